#!/usr/bin/env bash
# Runs every test: unit tests and the integration tests that start real farms (PostgreSQL,
# registry, buildah, QEMU) through ops/farm.sh with free ports and temporary directories.
# Everything the tests need from the network is fetched first, so the tests run offline.
#
# Usage: ops/test.sh [extra ctest arguments, e.g. -L unit or -R Farm]
# Env:   MANIFOLD_BUILD_DIR (default <repo>/build), MANIFOLD_CACHE_DIR (busybox .debs)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
build_dir="${MANIFOLD_BUILD_DIR:-$repo/build}"
start_ns="$(date +%s%N)"

step() {
  echo "==> $*"
}

step "Installing Debian packages"
./ops/install-deps.sh

step "Building into $build_dir"
./ops/build.sh

step "Enabling QEMU emulation"
./ops/binfmt.sh

step "Caching the busybox packages for the base image"
./ops/base-image.sh --fetch-only

./ops/check-ops-files.sh # promtool and jq on ops/prometheus, ops/grafana, ops/autoscaling

step "Fuzzing each libFuzzer target briefly"
./ops/fuzz.sh # clang build in build-fuzz/, MANIFOLD_FUZZ_SECONDS per target

step "Running the tests"
# -j1: integration tests start farms on real ports and share two CPUs; each test is
# bounded so a hung one fails instead of stalling CI.
status=0
ctest --test-dir "$build_dir" --output-on-failure -j1 --timeout 900 "$@" || status=$?

echo "==> Tests $([ "$status" -eq 0 ] && echo passed || echo FAILED) in $((($(date +%s%N) - start_ns) / 1000000000)) s"
exit "$status"
