#!/usr/bin/env bash
# From a Debian 12 checkout to a two-platform image in a local registry, in one command:
# installs the packages, builds manifold's programs (not the tests), starts a local farm
# (ops/farm.sh up: PostgreSQL, a registry, the coordinator, a linux/amd64 and a linux/arm64
# agent) and builds examples/hello for linux/amd64 and linux/arm64.
#
# Usage: ops/quickstart.sh        (re)start the farm and build the example
#        ops/quickstart.sh down   stop the farm
# Env:   as ops/farm.sh (MANIFOLD_FARM_DIR, MANIFOLD_FARM_*_PORT) and ops/build.sh
#        (MANIFOLD_BUILD_DIR).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

case "${1:-}" in
  down) exec ./ops/farm.sh down ;;
  "") ;;
  *)
    echo "usage: $0 [down]" >&2
    exit 2
    ;;
esac

if [ "$(id -u)" -ne 0 ]; then
  echo "quickstart.sh: needs root (packages, PostgreSQL's user, buildah, QEMU binfmt): sudo $0" >&2
  exit 1
fi

build_dir="${MANIFOLD_BUILD_DIR:-$repo/build}"
farm_dir="${MANIFOLD_FARM_DIR:-$repo/.farm}"
start_ns="$(date +%s%N)"

elapsed() {
  local s=$((($(date +%s%N) - start_ns) / 1000000000))
  printf '%dm%02ds' $((s / 60)) $((s % 60))
}

finished=0
# The total time is printed on failure too, and where to look.
trap '[ "$finished" -eq 1 ] || echo "quickstart.sh: failed after $(elapsed) (farm logs: $farm_dir/logs)" >&2' EXIT

step() {
  echo
  echo "==> $*"
}

step "Installing Debian packages (ops/install-deps.sh)"
./ops/install-deps.sh

step "Building the coordinator, the agent and the CLI (ops/build.sh)"
# Only the programs the farm and the example run: the tests would take most of the build
# time. The build dir stays configured with the tests, so ops/test.sh later builds them
# in the same dir without reconfiguring.
./ops/build.sh manifold-coordinator manifold-agent manifold

step "Starting a local farm (ops/farm.sh up)"
# The example needs the coordinator and agents, not only the services.
unset MANIFOLD_FARM_ONLY_SERVICES
./ops/farm.sh up

server="$(sed -n 's/^MANIFOLD_SERVER=//p' "$farm_dir/farm.env")"
registry="$(sed -n 's/^MANIFOLD_REGISTRY=//p' "$farm_dir/farm.env")"
if [ -z "$server" ] || [ -z "$registry" ]; then
  echo "quickstart.sh: $farm_dir/farm.env lacks MANIFOLD_SERVER or MANIFOLD_REGISTRY" >&2
  exit 1
fi
export MANIFOLD_SERVER="$server"
cli="$build_dir/cli/manifold"
ref="$registry/hello:latest"

step "Building examples/hello for linux/amd64 and linux/arm64"
"$cli" build --platform linux/amd64,linux/arm64 -t "$ref" examples/hello

step "Inspecting $ref"
"$cli" imagetools inspect "$ref"

# How to reach the CLI from the repository root, as the user will type it.
case "$cli" in
  "$repo"/*) cli_shown="${cli#"$repo"/}" ;;
  *) cli_shown="$cli" ;;
esac

finished=1
echo
echo "Done in $(elapsed). The farm keeps running."
echo
echo "Build your own directory (a Dockerfile; FROM busybox works without internet access):"
if [ "$server" != "http://127.0.0.1:7080" ]; then
  echo "  export MANIFOLD_SERVER=$server"
fi
echo "  $cli_shown build --platform linux/amd64,linux/arm64 -t $registry/NAME:TAG DIR"
echo "  $cli_shown imagetools inspect $registry/NAME:TAG"
echo
# A farm outside the default directory is only found again through the same variable.
farm_env=""
if [ "$farm_dir" != "$repo/.farm" ]; then
  farm_env="MANIFOLD_FARM_DIR=$farm_dir "
fi
echo "Farm status and logs: ${farm_env}./ops/farm.sh status, $farm_dir/logs/"
echo "Stop the farm:        ${farm_env}./ops/quickstart.sh down"
