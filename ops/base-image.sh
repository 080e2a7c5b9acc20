#!/usr/bin/env bash
# Builds a two-platform busybox image (linux/amd64 + linux/arm64) from Debian's
# busybox-static packages, pushes it as REGISTRY_HOST/library/busybox:latest, and writes
# FARM_DIR/registries.conf, which makes `FROM busybox` in buildah pull from that registry
# (there is no internet registry to pull the real one from), and `FROM debian` too, once
# ops/debian-image.sh has pushed debian images there.
#
# Usage: ops/base-image.sh REGISTRY_HOST FARM_DIR
#          REGISTRY_HOST is host:port of a registry served over plain HTTP (a local farm's).
#          Skips the build when the registry already holds both platforms.
#        ops/base-image.sh --fetch-only
#          Only downloads the .debs into the cache, so that later runs need no network.
# Env:   MANIFOLD_CACHE_DIR (default /var/cache/manifold) holds the .debs.
#        MANIFOLD_BASE_IMAGE_REBUILD=1 rebuilds and pushes even if the image is present.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_dir="${MANIFOLD_CACHE_DIR:-/var/cache/manifold}"
readonly archs=(amd64 arm64)
readonly image_repo=library/busybox
readonly image_tag=latest
# shellcheck source=ops/image-lib.sh
source "$repo/ops/image-lib.sh"

die() {
  echo "base-image.sh: $*" >&2
  exit 1
}

usage() {
  echo "usage: $0 REGISTRY_HOST FARM_DIR | $0 --fetch-only" >&2
  exit 2
}

# Newest cached busybox-static .deb for an architecture, or nothing.
cached_deb() {
  find "$cache_dir" -maxdepth 1 -type f -name "busybox-static_*_$1.deb" 2>/dev/null |
    sort -V | tail -n 1
}

fetch_debs() {
  mkdir -p "$cache_dir" || die "cannot create cache dir $cache_dir (set MANIFOLD_CACHE_DIR)"
  # Two farms starting at once share the cache: one downloads, the other waits.
  exec 9>"$cache_dir/.lock"
  flock -w 600 9 || die "timed out after 600 s waiting for the lock on $cache_dir"

  local missing=() arch
  for arch in "${archs[@]}"; do
    [ -n "$(cached_deb "$arch")" ] || missing+=("busybox-static:$arch")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    exec 9>&-
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || die "downloading ${missing[*]} needs root (or fill $cache_dir)"

  # apt only knows packages of foreign architectures that dpkg was told about.
  local native need_update=0
  native="$(dpkg --print-architecture)"
  for arch in "${archs[@]}"; do
    if [ "$arch" != "$native" ] && ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
      dpkg --add-architecture "$arch"
      need_update=1
    fi
  done
  local pkg
  for pkg in "${missing[@]}"; do
    apt-cache show --no-all-versions "$pkg" >/dev/null 2>&1 || need_update=1
  done
  if [ "$need_update" -eq 1 ]; then
    echo "base-image.sh: apt-get update (for ${missing[*]})"
    timeout 600 apt-get update -qq || die "apt-get update failed or took over 600 s"
  fi

  # apt-get download drops privileges to _apt: give it a directory it may write to.
  local tmp
  tmp="$(mktemp -d "$cache_dir/download.XXXXXX")"
  if id _apt >/dev/null 2>&1; then
    chown _apt "$tmp"
  fi
  echo "base-image.sh: downloading ${missing[*]} into $cache_dir"
  if ! (cd "$tmp" && timeout 600 apt-get download -qq "${missing[@]}"); then
    rm -rf "$tmp"
    die "apt-get download ${missing[*]} failed or took over 600 s"
  fi
  mv "$tmp"/*.deb "$cache_dir"/
  rm -rf "$tmp"
  exec 9>&-
}

# Whether REGISTRY_HOST already serves an index with every platform of the base image.
image_present() {
  index_has_platforms "$registry" "$image_repo" "$image_tag" "${archs[@]}"
}

build_and_push() {
  work="$farm_dir/base-image"
  rm -rf "$work"
  # The build storage is thrown away: only the pushed image matters.
  trap 'rm -rf "$work"' EXIT
  use_private_storage "$work"

  local arch deb ctx
  for arch in "${archs[@]}"; do
    deb="$(cached_deb "$arch")"
    ctx="$work/context-$arch"
    mkdir -p "$ctx/unpacked"
    dpkg-deb -x "$deb" "$ctx/unpacked" || die "cannot unpack $deb"
    [ -x "$ctx/unpacked/bin/busybox" ] || die "$deb has no bin/busybox"
    mv "$ctx/unpacked/bin/busybox" "$ctx/busybox"
    rm -rf "$ctx/unpacked"
    cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
EOF
    echo "base-image.sh: building base-$arch from $(basename "$deb")"
    # The arm64 RUN step executes under QEMU on an x86-64 host (and amd64 on arm64). A
    # second try: buildah's RUN can fail once for reasons of the moment (seen: "sealing
    # memfd copy: Device or resource busy").
    local try
    for try in 1 2; do
      timeout 600 buildah bud --isolation chroot --platform "linux/$arch" \
        -t "base-$arch" -f "$ctx/Dockerfile" "$ctx" && break
      [ "$try" -lt 2 ] ||
        die "buildah bud for linux/$arch failed twice or took over 600 s (is QEMU binfmt enabled? ops/binfmt.sh)"
      echo "base-image.sh: buildah bud for linux/$arch failed; trying once more"
    done
  done

  buildah manifest create base-list >/dev/null
  for arch in "${archs[@]}"; do
    buildah manifest add base-list "localhost/base-$arch" >/dev/null
  done
  echo "base-image.sh: pushing $registry/$image_repo:$image_tag"
  timeout 300 buildah manifest push --all --format oci --tls-verify=false \
    base-list "docker://$registry/$image_repo:$image_tag" ||
    die "pushing the base image to $registry failed or took over 300 s"

  image_present || die "pushed $registry/$image_repo:$image_tag but it does not list ${archs[*]}"
}

# A mirror entry for each image the farm's registry serves under library/: busybox, and
# debian (`FROM debian:12` in ops/docker/) once ops/debian-image.sh has pushed it.
mirror_entries() {
  local name
  for name in busybox debian; do
    printf '[[registry]]\nprefix = "docker.io/library/%s"\nlocation = "docker.io/library/%s"\n\n' "$name" "$name"
    printf '[[registry.mirror]]\nlocation = "%s/library/%s"\ninsecure = true\n\n' "$registry" "$name"
  done
}

write_registries_conf() {
  local conf="$farm_dir/registries.conf"
  # `FROM busybox` is docker.io/library/busybox; the farm's registry stands in for it as a
  # mirror (and for debian), and the registry itself is plain HTTP.
  cat >"$conf.tmp" <<EOF
unqualified-search-registries = ["docker.io"]

$(mirror_entries)

[[registry]]
location = "$registry"
insecure = true
EOF
  mv "$conf.tmp" "$conf"
}

if [ "${1:-}" = --fetch-only ]; then
  [ "$#" -eq 1 ] || usage
  fetch_debs
  echo "base-image.sh: busybox-static for ${archs[*]} cached in $cache_dir"
  exit 0
fi

[ "$#" -eq 2 ] || usage
registry="$1"
farm_dir="$2"
[[ "$registry" =~ ^[A-Za-z0-9.-]+:[0-9]+$ ]] || die "REGISTRY_HOST must be host:port, got '$registry'"
curl -sf --max-time 10 "http://$registry/v2/" >/dev/null ||
  die "no registry answers at http://$registry/v2/"
mkdir -p "$farm_dir"
farm_dir="$(cd "$farm_dir" && pwd)"

if [ "${MANIFOLD_BASE_IMAGE_REBUILD:-0}" != 1 ] && image_present; then
  echo "base-image.sh: $registry/$image_repo:$image_tag already has ${archs[*]}"
else
  fetch_debs
  "$repo/ops/binfmt.sh"
  build_and_push
  echo "base-image.sh: pushed $registry/$image_repo:$image_tag (${archs[*]})"
fi
write_registries_conf
echo "base-image.sh: wrote $farm_dir/registries.conf"
