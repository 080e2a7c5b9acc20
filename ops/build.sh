#!/usr/bin/env bash
# Configures and builds manifold with CMake and Ninja into ${MANIFOLD_BUILD_DIR:-<repo>/build}.
# Quiet on success; on failure prints the full CMake/compiler output and exits non-zero.
#
# Usage: ops/build.sh [TARGET...]   (no target: build everything, tests included)
# Env:   MANIFOLD_BUILD_DIR, MANIFOLD_BUILD_TYPE (default RelWithDebInfo),
#        MANIFOLD_BUILD_TESTS=0 (configure without the tests and GoogleTest),
#        MANIFOLD_TARGET_ARCH (a Debian architecture such as arm64: cross-compile for it
#          with ops/cmake/debian-cross.cmake when it is not this machine's; needs
#          `ops/install-deps.sh --build ARCH` and a build dir of its own),
#        MANIFOLD_CLI_CURL=system (link the CLI with the system's libcurl instead of the
#          static HTTP(S)-only one ops/curl.sh builds into BUILD_DIR/curl)
#        MANIFOLD_ZMQ=system (link the system's libzmq instead of the static one with small
#          message pipes that ops/zmq.sh builds into BUILD_DIR/zmq)
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
if [ -n "${MANIFOLD_BUILD_TESTS:-}" ]; then
  configure_args+=(-DMANIFOLD_BUILD_TESTS="$([ "$MANIFOLD_BUILD_TESTS" = 0 ] && echo OFF || echo ON)")
fi
target_arch="${MANIFOLD_TARGET_ARCH:-}"
cross_args=()
if [ -n "$target_arch" ] && [ "$target_arch" != "$(dpkg --print-architecture)" ]; then
  triplet="$(dpkg-architecture -a "$target_arch" -qDEB_HOST_MULTIARCH 2>/dev/null)" ||
    { echo "build.sh: MANIFOLD_TARGET_ARCH=$target_arch is not a Debian architecture (amd64, arm64, ...)" >&2; exit 1; }
  cross_args=(-DCMAKE_TOOLCHAIN_FILE="$repo/ops/cmake/debian-cross.cmake"
    -DMANIFOLD_CROSS_TRIPLET="$triplet")
  configure_args+=("${cross_args[@]}")
fi
case "${MANIFOLD_CLI_CURL:-static}" in
  static)
    "$repo/ops/curl.sh" "$build_dir/curl" "${cross_args[@]}" >"$log" 2>&1 ||
      fail "libcurl for the CLI (ops/curl.sh)"
    configure_args+=(-DMANIFOLD_CLI_CURL_PREFIX="$build_dir/curl")
    ;;
  system) configure_args+=(-DMANIFOLD_CLI_CURL_PREFIX=) ;;
  *) echo "build.sh: MANIFOLD_CLI_CURL is static (the default) or system" >&2; exit 1 ;;
esac
case "${MANIFOLD_ZMQ:-tuned}" in
  tuned)
    "$repo/ops/zmq.sh" "$build_dir/zmq" "${cross_args[@]}" >"$log" 2>&1 ||
      fail "libzmq (ops/zmq.sh)"
    configure_args+=(-DMANIFOLD_ZMQ_PREFIX="$build_dir/zmq")
    ;;
  system) configure_args+=(-DMANIFOLD_ZMQ_PREFIX=) ;;
  *) echo "build.sh: MANIFOLD_ZMQ is tuned (the default) or system" >&2; exit 1 ;;
esac
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
