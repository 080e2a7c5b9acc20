# shellcheck shell=bash
# Shell functions shared by the scripts that build a library from Debian's own source
# package (ops/curl.sh, ops/zmq.sh): the version apt would install, with Debian's patches,
# built aside and moved into place only once it is whole. Sourced; it only defines
# functions. The caller defines die().

# source_version PACKAGE: prints the version of PACKAGE's source package that apt would
# fetch ("4.3.4-6"), or fails when apt knows no source entries.
source_version() {
  local package="$1" dsc
  # Its lines are: 'URI' FILE SIZE HASH.
  dsc="$(apt-get source --print-uris "$package" 2>/dev/null |
    awk -v p="$package" '$2 ~ ("^" p "_.*\\.dsc$") { print $2; exit }')" || true
  [ -n "$dsc" ] || return 1
  dsc="${dsc#"${package}"_}"
  echo "${dsc%.dsc}"
}

# is_built PREFIX VERSION LIBRARY: whether PREFIX already holds LIBRARY built from VERSION.
is_built() {
  [ -f "$1/lib/$3" ] && [ "$(cat "$1/VERSION" 2>/dev/null)" = "$2" ]
}

# unpack_source PACKAGE VERSION WORK HINT: downloads PACKAGE's source package into WORK
# (which must exist) and unpacks it, Debian's patches applied, into WORK/src. HINT tells
# what to do when it cannot be downloaded.
unpack_source() {
  local package="$1" version="$2" work="$3" hint="$4"
  # apt checks the downloaded files against the signed source index.
  (cd "$work" && apt-get source -qq --download-only "$package") ||
    die "cannot download $package's source $version (offline? $hint)"
  dpkg-source -x --no-check "$work/${package}_$version.dsc" "$work/src" >/dev/null ||
    die "cannot unpack ${package}_$version.dsc"
}

# install_built WORK PREFIX VERSION LIBRARY: builds WORK/build (configured by the caller to
# install into WORK/prefix), installs it and replaces PREFIX with it, so that a failure
# leaves the previous build in place.
install_built() {
  local work="$1" prefix="$2" version="$3" library="$4"
  cmake --build "$work/build" || die "the build failed"
  cmake --install "$work/build" >/dev/null || die "the install failed"
  [ -f "$work/prefix/lib/$library" ] || die "the install left no lib/$library"
  echo "$version" >"$work/prefix/VERSION"
  rm -rf "$prefix"
  mv "$work/prefix" "$prefix"
  rm -rf "$work"
}
