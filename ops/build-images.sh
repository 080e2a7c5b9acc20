#!/usr/bin/env bash
# Builds manifold's own container images, manifold-coordinator and manifold-agent, for
# linux/amd64 and linux/arm64 with manifold itself, and checks what was pushed: each tag is
# an index of both platforms, and the program in each platform's image is an ELF binary for
# that platform's CPU. Prints the wall time of each image and of each platform's job.
#
# By default it brings up a local farm (ops/farm.sh up: PostgreSQL, a registry, the
# coordinator, an amd64 and an emulated arm64 agent), pushes the debian:12 base images to
# its registry (ops/debian-image.sh; the registry stands in for Docker Hub), builds, and
# leaves the farm running (ops/farm.sh down stops it). The arm64 image cross-compiles in a
# build stage of the host's platform (ops/docker/*.Dockerfile), so only its runtime stage's
# apt-get runs under QEMU. Slow (it compiles manifold once per image and platform): not
# part of ctest; figures in docs/BENCHMARKS.md.
#
# Usage: ops/build-images.sh [TAG]          (default TAG: dev)
#   pushes REGISTRY/manifold-coordinator:TAG and REGISTRY/manifold-agent:TAG
# Env: MANIFOLD_SERVER and MANIFOLD_REGISTRY (host:port, plain HTTP): use that coordinator
#        and registry instead of starting a local farm; its agents must pull `debian` from
#        that registry (the farm's registries.conf does this, see ops/base-image.sh).
#      MANIFOLD_BUILD_DIR (default <repo>/build): the manifold CLI (and the farm's programs).
#      MANIFOLD_IMAGES_BUILD_PLATFORM (default: this host's, linux/amd64 or linux/arm64): the
#        platform of the agents' hosts, where the build stage runs (BUILDPLATFORM).
#      MANIFOLD_IMAGES_MIN_FREE_GB (default 60): free disk the local farm must have.
#      MANIFOLD_FARM_* as for ops/farm.sh.
# The farm's agents keep their layer storage (tens of GB): ops/farm.sh purge deletes it.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
build_dir="${MANIFOLD_BUILD_DIR:-$repo/build}"
tag="${1:-dev}"
readonly images=(coordinator agent)
readonly archs=(amd64 arm64)

say() {
  echo "build-images: $*"
}

die() {
  echo "build-images: $*" >&2
  exit 1
}

[ "$#" -le 1 ] || die "usage: $0 [TAG]"
[[ "$tag" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "'$tag' is not an image tag"
manifold="$build_dir/cli/manifold"
[ -x "$manifold" ] || die "$manifold not found: build first (ops/build.sh) or set MANIFOLD_BUILD_DIR"
for tool in curl jq skopeo file tar; do
  command -v "$tool" >/dev/null || die "$tool not found (ops/install-deps.sh)"
done

case "$(uname -m)" in
  x86_64 | amd64) host_platform=linux/amd64 ;;
  aarch64 | arm64) host_platform=linux/arm64 ;;
  *) die "unsupported host architecture $(uname -m)" ;;
esac
build_platform="${MANIFOLD_IMAGES_BUILD_PLATFORM:-$host_platform}"

local_farm=0
if [ -n "${MANIFOLD_SERVER:-}" ]; then
  [ -n "${MANIFOLD_REGISTRY:-}" ] || die "MANIFOLD_SERVER is set: set MANIFOLD_REGISTRY (host:port) too"
  server="$MANIFOLD_SERVER"
  registry="$MANIFOLD_REGISTRY"
else
  # buildah's vfs storage keeps a full copy of the file system for every cached step: one
  # run left about 50 GB in the two agents' storage (docs/BENCHMARKS.md).
  farm_parent="$(dirname "${MANIFOLD_FARM_DIR:-$repo/.farm}")"
  free_gb=$(($(df -Pk "$farm_parent" | awk 'NR == 2 {print $4}') / 1024 / 1024))
  min_free_gb="${MANIFOLD_IMAGES_MIN_FREE_GB:-60}"
  [ "$free_gb" -ge "$min_free_gb" ] ||
    die "only $free_gb GB free under $farm_parent; the agents' layer storage needs about $min_free_gb GB (free space, put the farm elsewhere with MANIFOLD_FARM_DIR, or set MANIFOLD_IMAGES_MIN_FREE_GB)"
  say "starting a local farm (ops/farm.sh up)"
  local_farm=1
  "$repo/ops/farm.sh" up
  farm_env="${MANIFOLD_FARM_DIR:-$repo/.farm}/farm.env"
  server="$(sed -n 's/^MANIFOLD_SERVER=//p' "$farm_env")"
  registry="$(sed -n 's/^MANIFOLD_REGISTRY=//p' "$farm_env")"
fi
if [ -z "$server" ] || [ -z "$registry" ]; then die "no coordinator or registry address"; fi
export MANIFOLD_SERVER="$server"

t0="$(date +%s)"
"$repo/ops/debian-image.sh" "$registry"
say "base images ready in $(($(date +%s) - t0)) s"

# seconds_between FROM TO: seconds between two RFC 3339 times.
seconds_between() {
  echo $(($(date -d "$2" +%s) - $(date -d "$1" +%s)))
}

# Each platform's job: from its first event (queued or assigned) to success.
print_job_times() {
  local build_id="$1" body
  body="$(curl -sf --max-time 10 "$server/v1/builds/$build_id")" || die "cannot read build $build_id from $server"
  jq -r '.jobs[] | [.platform, (if .emulated then "emulated" else "native" end),
          (.events | map(select(.state == "assigned")) | first | .at // ""),
          (.events | map(select(.state == "succeeded")) | last | .at // "")] | @tsv' <<<"$body" |
    while IFS=$'\t' read -r platform mode assigned succeeded; do
      if [ -n "$assigned" ] && [ -n "$succeeded" ]; then
        say "  $platform ($mode agent): $(seconds_between "$assigned" "$succeeded") s from assignment to pushed"
      else
        say "  $platform ($mode agent): no assignment or success recorded"
      fi
    done
}

# elf_machine FILE: the ELF header's e_machine (little-endian u16 at offset 18).
elf_machine() {
  od -An -tu2 -j18 -N2 "$1" | tr -d ' '
}

# check_image IMAGE: the index has both platforms, and each platform's program is for its CPU.
check_image() {
  local name="$1" ref="$registry/manifold-$1:$tag" index arch digest manifest layer dir binary
  local program="usr/local/bin/manifold-$1"
  index="$(skopeo inspect --raw --tls-verify=false "docker://$ref")" || die "skopeo cannot read $ref"
  for arch in "${archs[@]}"; do
    digest="$(jq -r --arg a "$arch" \
      '[.manifests[]? | select(.platform.os == "linux" and .platform.architecture == $a)] | first | .digest // empty' \
      <<<"$index")"
    [ -n "$digest" ] || die "$ref has no linux/$arch image: $(jq -c '[.manifests[]?.platform]' <<<"$index")"
    manifest="$(skopeo inspect --raw --tls-verify=false "docker://$registry/manifold-$name@$digest")" ||
      die "skopeo cannot read $ref's linux/$arch manifest $digest"
    dir="$(mktemp -d)"
    # The program is in one of the layers (the COPY near the end): look from the last one.
    binary=""
    while read -r layer; do
      curl -sf --max-time 300 "http://$registry/v2/manifold-$name/blobs/$layer" |
        tar -xzf - -C "$dir" "$program" 2>/dev/null || true
      if [ -f "$dir/$program" ]; then
        binary="$dir/$program"
        break
      fi
    done < <(jq -r '.layers | reverse | .[].digest' <<<"$manifest")
    [ -n "$binary" ] || die "no layer of $ref for linux/$arch holds /$program"
    local machine expected
    machine="$(elf_machine "$binary")"
    case "$arch" in
      amd64) expected=62 ;;  # EM_X86_64
      arm64) expected=183 ;; # EM_AARCH64
    esac
    say "  linux/$arch $digest: $(file -b "$binary" | cut -d, -f1-2)"
    [ "$machine" = "$expected" ] ||
      die "$ref for linux/$arch holds a program for ELF machine $machine, not $expected"
    rm -rf "$dir"
  done
}

for image in "${images[@]}"; do
  ref="$registry/manifold-$image:$tag"
  say "building $ref for linux/amd64,linux/arm64 (build stage on $build_platform)"
  metadata="$(mktemp)"
  t0="$(date +%s)"
  # BUILDPLATFORM: buildah 1.28 does not expand its own in FROM (ops/docker/*.Dockerfile).
  "$manifold" build --platform linux/amd64,linux/arm64 --progress plain \
    --build-arg "BUILDPLATFORM=$build_platform" \
    -f "$repo/ops/docker/$image.Dockerfile" -t "$ref" --metadata-file "$metadata" "$repo" ||
    die "manifold build of $ref failed"
  elapsed=$(($(date +%s) - t0))
  build_id="$(jq -r '."manifold.build.id"' "$metadata")"
  rm -f "$metadata"
  say "$ref: built in $elapsed s (build $build_id)"
  print_job_times "$build_id"
  check_image "$image"
done
say "done: ${images[*]/#/$registry/manifold-} (tag $tag, linux/amd64 and linux/arm64)"
if [ "$local_farm" = 1 ]; then
  say "the farm is still up; ops/farm.sh purge stops it and frees its layer storage"
fi
