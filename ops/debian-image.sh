#!/usr/bin/env bash
# Builds the `debian:12` and `debian:12-slim` base images for linux/amd64 and linux/arm64
# from Debian's archive with mmdebstrap (the foreign architecture's maintainer scripts run
# under QEMU) and pushes each as one two-platform OCI index to REGISTRY_HOST/library/debian.
# A farm's registry stands in for Docker Hub: ops/base-image.sh writes the agents'
# registries.conf so that `FROM debian:12` pulls from it (there is no internet registry
# here to pull the real one from).
#
# Like the official images: variant minbase, apt sources for bookworm, bookworm-updates and
# bookworm-security, no apt lists, CMD ["bash"]; -slim also leaves out man pages, docs
# (but their copyright files) and locales.
#
# Usage: ops/debian-image.sh REGISTRY_HOST
#          REGISTRY_HOST is host:port of a registry served over plain HTTP (a local farm's).
#          Skips the build when the registry already holds both tags for both platforms.
# Env:   MANIFOLD_DEBIAN_MIRROR (default http://deb.debian.org/debian) and
#        MANIFOLD_DEBIAN_SECURITY_MIRROR (default http://deb.debian.org/debian-security):
#          where mmdebstrap downloads from, and what the images' apt sources name.
#        MANIFOLD_BASE_IMAGE_REBUILD=1 rebuilds and pushes even if the images are present.
#        TMPDIR (default /var/tmp) holds the scratch space (about 1 GB), deleted at exit.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mirror="${MANIFOLD_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security_mirror="${MANIFOLD_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
readonly archs=(amd64 arm64)
readonly image_repo=library/debian
readonly suite=bookworm
readonly tags=(12 12-slim)
# shellcheck source=ops/image-lib.sh
source "$repo/ops/image-lib.sh"

die() {
  echo "debian-image.sh: $*" >&2
  exit 1
}

usage() {
  echo "usage: $0 REGISTRY_HOST" >&2
  exit 2
}

all_present() {
  local tag
  for tag in "${tags[@]}"; do
    index_has_platforms "$registry" "$image_repo" "$tag" "${archs[@]}" || return 1
  done
}

# The dpkg settings of the -slim images (those of the official debian:*-slim).
slim_dpkg_options() {
  local opt
  for opt in 'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright' \
    'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/groff/*' \
    'path-exclude=/usr/share/info/*' 'path-exclude=/usr/share/locale/*' \
    'path-include=/usr/share/locale/locale.alias' 'path-exclude=/usr/share/lintian/*' \
    'path-exclude=/usr/share/linda/*'; do
    printf -- '--dpkgopt=%s\n' "$opt"
  done
}

# rootfs ARCH TAG TARBALL: a minbase Debian tree for ARCH as a tarball.
rootfs() {
  local arch="$1" tag="$2" out="$3"
  local -a options=(--variant=minbase --arch="$arch" --format=tar --skip=output/dev --quiet)
  if [ "$tag" = 12-slim ]; then
    mapfile -t -O "${#options[@]}" options < <(slim_dpkg_options)
  fi
  # Container images do not ship apt's caches: the official images' apt settings.
  options+=(--customize-hook="copy-in $(printf '%s ' "$work"/apt.conf.d/*)/etc/apt/apt.conf.d")
  echo "debian-image.sh: mmdebstrap $suite for $arch ($tag)"
  timeout 1800 mmdebstrap "${options[@]}" "$suite" "$out" \
    "deb $mirror $suite main" \
    "deb $mirror $suite-updates main" \
    "deb $security_mirror $suite-security main" ||
    die "mmdebstrap $suite for $arch failed or took over 1800 s (is QEMU binfmt enabled? ops/binfmt.sh; is $mirror reachable?)"
}

build_and_push() {
  use_private_storage "$work"

  mkdir -p "$work/apt.conf.d"
  printf 'Acquire::Languages "none";\n' >"$work/apt.conf.d/docker-no-languages"
  printf 'APT::AutoRemove::SuggestsImportant "false";\n' >"$work/apt.conf.d/docker-autoremove-suggests"
  local clean='rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true'
  printf 'DPkg::Post-Invoke { "%s"; };\nAPT::Update::Post-Invoke { "%s"; };\nDir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n' \
    "$clean" "$clean" >"$work/apt.conf.d/docker-clean"

  local tag arch ctx list
  for tag in "${tags[@]}"; do
    list="debian-$tag-list"
    buildah manifest create "$list" >/dev/null
    for arch in "${archs[@]}"; do
      ctx="$work/context-$tag-$arch"
      mkdir -p "$ctx"
      rootfs "$arch" "$tag" "$ctx/rootfs.tar"
      cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
ADD rootfs.tar /
CMD ["bash"]
EOF
      # No RUN step: nothing runs under QEMU here, the platform only labels the image.
      timeout 600 buildah bud --isolation chroot --platform "linux/$arch" \
        -t "debian-$tag-$arch" -f "$ctx/Dockerfile" "$ctx" >/dev/null ||
        die "buildah bud of debian:$tag for linux/$arch failed or took over 600 s"
      rm -rf "$ctx"
      buildah manifest add "$list" "localhost/debian-$tag-$arch" >/dev/null
    done
    echo "debian-image.sh: pushing $registry/$image_repo:$tag"
    timeout 600 buildah manifest push --all --format oci --tls-verify=false \
      "$list" "docker://$registry/$image_repo:$tag" ||
      die "pushing debian:$tag to $registry failed or took over 600 s"
    index_has_platforms "$registry" "$image_repo" "$tag" "${archs[@]}" ||
      die "pushed $registry/$image_repo:$tag but it does not list ${archs[*]}"
  done
}

[ "$#" -eq 1 ] || usage
registry="$1"
[[ "$registry" =~ ^[A-Za-z0-9.-]+:[0-9]+$ ]] || die "REGISTRY_HOST must be host:port, got '$registry'"
for tool in curl jq buildah mmdebstrap; do
  command -v "$tool" >/dev/null || die "$tool not found (ops/install-deps.sh)"
done
curl -sf --max-time 10 "http://$registry/v2/" >/dev/null ||
  die "no registry answers at http://$registry/v2/"

if [ "${MANIFOLD_BASE_IMAGE_REBUILD:-0}" != 1 ] && all_present; then
  echo "debian-image.sh: $registry/$image_repo:{${tags[*]}} already have ${archs[*]}"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || die "building the images needs root (mmdebstrap and buildah)"
"$repo/ops/binfmt.sh"
work="$(mktemp -d "${TMPDIR:-/var/tmp}/manifold-debian-image.XXXXXX")"
trap 'rm -rf "$work"' EXIT
build_and_push
echo "debian-image.sh: pushed $registry/$image_repo:{${tags[*]}} (${archs[*]})"
