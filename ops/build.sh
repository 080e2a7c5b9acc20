#!/usr/bin/env bash
# Configures and builds manifold with CMake and Ninja into ${MANIFOLD_BUILD_DIR:-<repo>/build}.
# Quiet on success; on failure prints the full CMake/compiler output and exits non-zero.
#
# Usage: ops/build.sh [TARGET...]   (no target: build everything, tests included)
# Env:   MANIFOLD_BUILD_DIR, MANIFOLD_BUILD_TYPE (default RelWithDebInfo)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${MANIFOLD_BUILD_DIR:-$repo/build}"
build_type="${MANIFOLD_BUILD_TYPE:-RelWithDebInfo}"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

fail() {
  cat "$log" >&2
  echo "build.sh: $1 failed (build dir $build_dir)" >&2
  exit 1
}

configure_args=(-S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type")
# The generator can only be chosen when the build dir is first configured; naming it again
# for a dir made by another generator would make CMake refuse.
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  configure_args+=(-G Ninja)
fi
cmake "${configure_args[@]}" >"$log" 2>&1 || fail "configure"

build_args=(--build "$build_dir")
if [ "$#" -gt 0 ]; then
  build_args+=(--target "$@")
fi
cmake "${build_args[@]}" >"$log" 2>&1 || fail "build"
