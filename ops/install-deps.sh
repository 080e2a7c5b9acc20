#!/usr/bin/env bash
# Installs every Debian package manifold needs to build, test and run a local farm.
# Idempotent: packages already present are skipped, so a second run costs a dpkg query.
#
# Usage: ops/install-deps.sh             everything, for development on this machine
#        ops/install-deps.sh --build [ARCH]
#          only what compiles the programs (no tests, services or tools) for the Debian
#          architecture ARCH (default: this machine's). For a foreign ARCH: the cross
#          compiler and the libraries' ARCH packages through multiarch, for
#          MANIFOLD_TARGET_ARCH=ARCH ops/build.sh (the container images' build stage).
# Env:   MANIFOLD_CLI_CURL=system and MANIFOLD_ZMQ=system as for ops/build.sh: with both,
#        Debian's source entries, which ops/curl.sh and ops/zmq.sh need to fetch source
#        packages, are not added.
set -euo pipefail

# Programs that compile manifold; capnp runs at build time, so it is the build machine's.
build_tools=(build-essential cmake ninja-build pkg-config capnproto
  dpkg-dev)  # dpkg-source unpacks source packages for ops/curl.sh and ops/zmq.sh
# Libraries the programs link: for a cross build, the target architecture's.
libraries=(
  libzmq3-dev cppzmq-dev libcapnp-dev libpqxx-dev libpq-dev
  prometheus-cpp-dev libssl-dev libcurl4-openssl-dev libcpp-httplib-dev
  libspdlog-dev zlib1g-dev
  libnghttp2-dev  # HTTP/2 for the CLI's own libcurl (ops/curl.sh)
  libsodium-dev  # CURVE in the libzmq ops/zmq.sh builds
)
# Header-only and architecture-independent (Architecture: all).
headers=(nlohmann-json3-dev libcli11-dev libtomlplusplus-dev)
development=(
  clang-format
  clang libclang-rt-14-dev  # libFuzzer and the sanitizers for ops/fuzz.sh
  libgtest-dev libgmock-dev
  # real services used by the farm and its tests
  postgresql-15 postgresql-client-15 docker-registry buildah skopeo
  # the buildah agent's RUN-step sandbox: runc, its private network, its firewall rules
  runc containernetworking-plugins iptables iproute2
  qemu-user-static binfmt-support busybox-static
  mmdebstrap arch-test  # ops/debian-image.sh: debian:12 base images for amd64 and arm64
  docker.io  # the docker backend; tests start their own dockerd (tests/support/docker_engine.h)
  # tools used by scripts
  curl jq ca-certificates util-linux
  e2fsprogs  # mkfs.ext4: each job's work dir is a loop-mounted file system (--job-disk)
  file  # ops/build-images.sh checks each image's binary is for its architecture
  prometheus  # promtool checks ops/prometheus and the dashboard's queries (ops/check-ops-files.sh)
  docker-compose  # `docker-compose config` checks docker-compose.yml (ops/check-ops-files.sh)
)

die() {
  echo "install-deps.sh: $*" >&2
  exit 1
}

native="$(dpkg --print-architecture)"
case "${1:-}" in
  "")
    packages=("${build_tools[@]}" "${libraries[@]}" "${headers[@]}" "${development[@]}")
    ;;
  --build)
    [ "$#" -le 2 ] || die "usage: $0 [--build [ARCH]]"
    arch="${2:-$native}"
    [[ "$arch" =~ ^[a-z0-9]+$ ]] || die "'$arch' is not a Debian architecture (amd64, arm64, ...)"
    packages=("${build_tools[@]}" "${headers[@]}")
    if [ "$arch" = "$native" ]; then
      packages+=("${libraries[@]}")
    else
      # Debian's cross compiler for ARCH (dpkg-architecture, which could say this, is
      # in dpkg-dev, not yet installed on a bare debian image).
      case "$arch" in
        amd64) packages+=(g++-x86-64-linux-gnu) ;;
        arm64) packages+=(g++-aarch64-linux-gnu) ;;
        armhf) packages+=(g++-arm-linux-gnueabihf) ;;
        *) die "no cross build for '$arch' here: amd64, arm64 or armhf (or build natively on such a host)" ;;
      esac
      for p in "${libraries[@]}"; do packages+=("$p:$arch"); done
    fi
    ;;
  *) die "usage: $0 [--build [ARCH]]" ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "manifold: these packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  # apt only knows the packages of a foreign architecture that dpkg was told about.
  if [ "${arch:-$native}" != "$native" ] &&
    ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
    dpkg --add-architecture "$arch"
  fi
  echo "manifold: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ops/curl.sh and ops/zmq.sh fetch source packages, for which apt needs the source indices
# of the Debian archives this machine already uses: add a deb-src entry beside each deb entry.
if { [ "${MANIFOLD_CLI_CURL:-static}" = static ] || [ "${MANIFOLD_ZMQ:-tuned}" = tuned ]; } &&
  ! apt-get source --print-uris curl >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] ||
    die "apt knows no source packages, and adding Debian's source entries needs root"
  entries=/etc/apt/sources.list.d/manifold-deb-src
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed 's/^Types:[[:space:]]*deb[[:space:]]*$/Types: deb-src/' \
      /etc/apt/sources.list.d/debian.sources >"$entries.sources"
  elif [ -f /etc/apt/sources.list ]; then
    sed -n 's/^deb[[:space:]]/deb-src /p' /etc/apt/sources.list >"$entries.list"
  fi
  echo "manifold: adding Debian's source entries (ops/curl.sh and ops/zmq.sh build from them)"
  apt-get update -qq
  apt-get source --print-uris curl >/dev/null 2>&1 ||
    die "apt still knows no source package for curl: add a deb-src entry for Debian's archive"
fi
