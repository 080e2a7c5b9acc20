#!/usr/bin/env bash
# Builds the libcurl the manifold CLI links: Debian's own curl source package (the version
# apt would install, with Debian's security patches), configured for HTTP and HTTPS only,
# over OpenSSL, with zlib and HTTP/2, as a static library. The CLI runs once or more per CI
# job, and loading the 35 shared libraries Debian's libcurl pulls in (LDAP, RTMP, SSH,
# Kerberos, GnuTLS...) was most of its start. The daemons (coordinator, agent) link
# Debian's shared libcurl, which apt keeps patched; rebuild to bring the CLI's up to date.
# Needs Debian's source entries (ops/install-deps.sh adds them) but not root.
# Idempotent: fetches and builds only when Debian's source version differs from the last.
#
# Usage: ops/curl.sh PREFIX [CMAKE_ARG...]
#   installs into PREFIX (include/, lib/libcurl.a, VERSION); extra arguments go to curl's
#   CMake configure (ops/build.sh passes its cross toolchain on)
set -euo pipefail

die() {
  echo "curl.sh: $*" >&2
  exit 1
}
# shellcheck source=ops/source-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/source-lib.sh"

[ "$#" -ge 1 ] || die "usage: $0 PREFIX [CMAKE_ARG...]"
prefix="$1"
shift

version="$(source_version curl)" ||
  die "apt knows no source package for curl: run ops/install-deps.sh (it adds Debian's source entries)"
is_built "$prefix" "$version" libcurl.a && exit 0

work="$prefix.work"
rm -rf "$work"
mkdir -p "$work"
unpack_source curl "$version" "$work" \
  "MANIFOLD_CLI_CURL=system ops/build.sh links the system's libcurl instead"

options=(
  -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DBUILD_CURL_EXE=OFF -DBUILD_TESTING=OFF
  -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DENABLE_THREADED_RESOLVER=ON
  -DCURL_USE_OPENSSL=ON -DUSE_NGHTTP2=ON -DCURL_ZLIB=ON
  # Debian's trust store, as Debian's libcurl has it (not guessed from the build machine).
  -DCURL_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt -DCURL_CA_PATH=/etc/ssl/certs
  # Nothing a registry or a coordinator needs beyond HTTP(S): no other protocols, and none
  # of the libraries only they (or IDN hosts, cookie suffixes, brotli/zstd) use.
  -DHTTP_ONLY=ON -DCURL_DISABLE_LDAP=ON -DCURL_DISABLE_LDAPS=ON -DCURL_USE_LIBSSH2=OFF
  -DCURL_USE_LIBSSH=OFF -DCURL_USE_GSSAPI=OFF -DUSE_LIBIDN2=OFF
  -DCURL_USE_LIBPSL=OFF -DCURL_BROTLI=OFF -DCURL_ZSTD=OFF
  -DCMAKE_INSTALL_PREFIX="$work/prefix" -DCMAKE_INSTALL_LIBDIR=lib
)
cmake -S "$work/src" -B "$work/build" -G Ninja "${options[@]}" "$@" || die "curl's configure failed"
install_built "$work" "$prefix" "$version" libcurl.a
