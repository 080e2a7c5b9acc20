# shellcheck shell=bash
# The services the coordinator and agents use besides PostgreSQL: the registry and the
# two-platform busybox base image in it (ops/base-image.sh). Sourced by ops/farm.sh.

start_registry() {
  local t0
  t0="$(date +%s%N)"
  open_log registry
  local data="${registry_data:-$farm_dir/registry/data}"
  mkdir -p "$farm_dir/registry" "$data"
  cat >"$farm_dir/registry/config.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$registry_port
EOF
  command -v docker-registry >/dev/null || die "docker-registry not found (ops/install-deps.sh)"
  spawn registry docker-registry serve "$farm_dir/registry/config.yml"
  wait_for 30 "the registry on 127.0.0.1:$registry_port" registry \
    curl -sf --max-time 2 "http://127.0.0.1:$registry_port/v2/"
  say "registry ready on 127.0.0.1:$registry_port ($(elapsed_since "$t0"))"
}

start_base_image() {
  local t0
  t0="$(date +%s%N)"
  open_log base-image
  (
    close_inherited_fds
    exec timeout 900 "$repo/ops/base-image.sh" "127.0.0.1:$registry_port" "$farm_dir"
  ) >>"$current_log" 2>&1 </dev/null || die "base image failed"
  say "base image 127.0.0.1:$registry_port/library/busybox:latest ready ($(elapsed_since "$t0"))"
}
