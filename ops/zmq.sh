#!/usr/bin/env bash
# Builds the libzmq manifold's programs link: Debian's own zeromq3 source package (the
# version apt would install, with Debian's patches), CURVE over libsodium as Debian has it,
# as a static library, with one change: message pipes grow in chunks of 8 messages instead
# of 256 (src/config.hpp, message_pipe_granularity). Each ZeroMQ connection has a pipe each
# way, and each pipe keeps its current chunk and a spare one, so with 256 (16 KiB a chunk)
# a connection that has carried 512 messages holds about 64 KiB more than a new one. The
# coordinator holds one connection per agent: with Debian's libzmq an aged fleet of 10,000
# agents took about 600 MB, most of it these chunks (docs/BENCHMARKS.md, "Fleet size").
# The agents' message rate is far below where the extra allocations would show.
# Needs Debian's source entries (ops/install-deps.sh adds them) but not root.
# Idempotent: fetches and builds only when Debian's source version differs from the last.
#
# Usage: ops/zmq.sh PREFIX [CMAKE_ARG...]
#   installs into PREFIX (lib/libzmq.a, VERSION; programs use the system's headers); extra arguments go to libzmq's
#   CMake configure (ops/build.sh passes its cross toolchain on)
set -euo pipefail

die() {
  echo "zmq.sh: $*" >&2
  exit 1
}
# shellcheck source=ops/source-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/source-lib.sh"

[ "$#" -ge 1 ] || die "usage: $0 PREFIX [CMAKE_ARG...]"
prefix="$1"
shift

granularity=8
source_version="$(source_version zeromq3)" ||
  die "apt knows no source package for zeromq3: run ops/install-deps.sh (it adds Debian's source entries)"
# The change is part of the version, so that changing it rebuilds.
version="$source_version+pipe$granularity"
is_built "$prefix" "$version" libzmq.a && exit 0

work="$prefix.work"
rm -rf "$work"
mkdir -p "$work"
unpack_source zeromq3 "$source_version" "$work" \
  "MANIFOLD_ZMQ=system ops/build.sh links the system's libzmq instead"
config="$work/src/src/config.hpp"
grep -q 'message_pipe_granularity = 256,' "$config" ||
  die "zeromq3 $source_version no longer sets message_pipe_granularity = 256 in src/config.hpp: check what it does now before changing it"
sed -i "s/message_pipe_granularity = 256,/message_pipe_granularity = $granularity,/" "$config"

# Programs compile against the system's zmq.h (from libzmq3-dev), so it must be this
# version's.
system_header="$(dpkg -L libzmq3-dev 2>/dev/null | grep '/include/zmq\.h$' | head -n 1)"
cmp -s "$work/src/include/zmq.h" "${system_header:-/usr/include/zmq.h}" ||
  die "zeromq3 $source_version's zmq.h differs from the installed libzmq3-dev's: bring libzmq3-dev to $source_version (ops/install-deps.sh, or apt-get install libzmq3-dev)"

options=(
  -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED=OFF -DBUILD_STATIC=ON -DBUILD_TESTS=OFF
  -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DWITH_DOCS=OFF -DWITH_PERF_TOOL=OFF
  -DENABLE_DRAFTS=OFF -DENABLE_CURVE=ON -DWITH_LIBSODIUM=ON
  # Transports manifold does not use, and the libraries only they need.
  -DWITH_OPENPGM=OFF -DWITH_NORM=OFF -DWITH_VMCI=OFF -DWITH_TLS=OFF
  -DCMAKE_INSTALL_PREFIX="$work/prefix" -DCMAKE_INSTALL_LIBDIR=lib
)
cmake -S "$work/src" -B "$work/build" -G Ninja "${options[@]}" "$@" || die "libzmq's configure failed"
install_built "$work" "$prefix" "$version" libzmq.a
