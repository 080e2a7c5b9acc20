#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) in a build dir of their own and
# runs each for a bounded time on its seed corpus in tests/fuzz/<target>/. A crash, leak,
# sanitizer report or timeout fails the script and leaves the input that caused it in the
# output dir; add that input to a unit test, fix the bug, and consider adding it as a seed.
# New corpus entries go to the output dir, never into the checked-in seeds.
#
# Usage: ops/fuzz.sh [TARGET...]   (wire reference platform oci tar build_request;
#                                  none: all of them)
# Env:   MANIFOLD_FUZZ_SECONDS   time per target (default 10)
#        MANIFOLD_FUZZ_BUILD_DIR (default <repo>/build-fuzz)
#        MANIFOLD_FUZZ_OUT       corpus and crash output (default a temporary dir, removed
#                                unless something was found)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${MANIFOLD_FUZZ_BUILD_DIR:-$repo/build-fuzz}"
seconds="${MANIFOLD_FUZZ_SECONDS:-10}"
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(wire reference platform oci tar build_request)

out="${MANIFOLD_FUZZ_OUT:-}"
keep_out=1
if [ -z "$out" ]; then
  out="$(mktemp -d /tmp/manifold-fuzz.XXXXXX)"
  keep_out=0
fi
log="$(mktemp)"
cleanup() {
  rm -f "$log"
  [ "$keep_out" -eq 1 ] || rm -rf "$out"
}
trap cleanup EXIT

start_ns="$(date +%s%N)"
configure_args=(-S "$repo" -B "$build_dir" -DMANIFOLD_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++)
[ -f "$build_dir/CMakeCache.txt" ] || configure_args+=(-G Ninja)
if ! cmake "${configure_args[@]}" >"$log" 2>&1 || ! cmake --build "$build_dir" >>"$log" 2>&1; then
  cat "$log" >&2
  echo "fuzz.sh: building the fuzz targets failed (build dir $build_dir)" >&2
  exit 1
fi
echo "fuzz.sh: built the fuzz targets in $((($(date +%s%N) - start_ns) / 1000000000)) s"

failed=()
for target in "${targets[@]}"; do
  binary="$build_dir/tests/fuzz/fuzz_$target"
  seeds="$repo/tests/fuzz/$target"
  if [ ! -x "$binary" ] || [ ! -d "$seeds" ]; then
    echo "fuzz.sh: unknown target $target (no $binary or no $seeds)" >&2
    exit 2
  fi
  mkdir -p "$out/$target/corpus"
  # -timeout: one input taking longer is a hang, reported like a crash. TMPDIR: the tar
  # target extracts under a temporary dir, which libFuzzer's exit would leave in /tmp.
  mkdir -p "$out/$target/tmp"
  if TMPDIR="$out/$target/tmp" "$binary" "$out/$target/corpus" "$seeds" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/$target/" >"$log" 2>&1; then
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")"
    corpus="$(find "$out/$target/corpus" -type f | wc -l)"
    echo "fuzz.sh: $target: ${runs:-?} runs in $seconds s (${rate:-?} exec/s), $corpus new corpus entries"
  else
    tail -n 60 "$log" >&2
    echo "fuzz.sh: $target FAILED; the input is in $out/$target/ (crash-*, leak-*, timeout-*)" >&2
    failed+=("$target")
    keep_out=1
  fi
done

echo "fuzz.sh: done in $((($(date +%s%N) - start_ns) / 1000000000)) s"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz.sh: failing targets: ${failed[*]}" >&2
  exit 1
fi
