#!/usr/bin/env bash
# Prints, one a line, the Debian packages that own the shared libraries a binary links
# (its ELF NEEDED entries), looked up in the multiarch directory of the binary's
# architecture. It reads the ELF file rather than running it (as ldd would), so it works
# for a cross-compiled binary whose libraries were installed through multiarch. apt pulls
# in what those libraries need in turn. The container images' runtime stages install these.
#
# Usage: ops/runtime-packages.sh BINARY ARCH    (ARCH: the binary's Debian architecture)
set -euo pipefail

die() {
  echo "runtime-packages.sh: $*" >&2
  exit 1
}

[ "$#" -eq 2 ] || die "usage: $0 BINARY ARCH"
binary="$1"
multiarch="$(dpkg-architecture -a "$2" -qDEB_HOST_MULTIARCH 2>/dev/null)" ||
  die "'$2' is not a Debian architecture (amd64, arm64, ...)"
[ -f "$binary" ] || die "no file $binary"
needed="$(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p')" ||
  die "$binary is not an ELF file readelf can read"
[ -n "$needed" ] || die "$binary links no shared library (static, or not an ELF executable)"

while read -r lib; do
  # By directory and file name, which also matches with merged /usr (/lib vs /usr/lib); the
  # cross toolchain's own copies live in /usr/TRIPLET/lib and do not match.
  owner="$(dpkg -S "*/$multiarch/$lib" 2>/dev/null | head -n 1 | cut -d: -f1)"
  [ -n "$owner" ] || die "no installed $2 package holds $lib (in a $multiarch directory)"
  echo "$owner"
done <<<"$needed" | sort -u
