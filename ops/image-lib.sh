# shellcheck shell=bash
# Shell functions shared by the scripts that make base images in a farm's registry
# (ops/base-image.sh, ops/debian-image.sh). Sourced; it only defines functions.

# index_has_platforms REGISTRY REPO TAG ARCH...: whether http://REGISTRY serves REPO:TAG as
# an image index (or manifest list) that lists linux/ARCH for every ARCH.
index_has_platforms() {
  local registry="$1" repo="$2" tag="$3" body arch
  shift 3
  body="$(curl -sf --max-time 10 \
    -H 'Accept: application/vnd.oci.image.index.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
    "http://$registry/v2/$repo/manifests/$tag")" || return 1
  for arch in "$@"; do
    jq -e --arg a "$arch" \
      '[.manifests[]? | select(.platform.os == "linux" and .platform.architecture == $a)] | length > 0' \
      <<<"$body" >/dev/null || return 1
  done
}

# use_private_storage DIR: points buildah at a vfs container storage under DIR
# (CONTAINERS_STORAGE_CONF), so nothing depends on (or changes) the host's storage.
use_private_storage() {
  local dir="$1"
  mkdir -p "$dir/storage/run" "$dir/storage/graph"
  cat >"$dir/storage.conf" <<CONF
[storage]
driver = "vfs"
runroot = "$dir/storage/run"
graphroot = "$dir/storage/graph"
CONF
  export CONTAINERS_STORAGE_CONF="$dir/storage.conf"
}
