#!/usr/bin/env bash
# Installs every Debian package manifold needs to build, test and run a local farm.
# Idempotent: packages already present are skipped, so a second run costs a dpkg query.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang-format
  clang libclang-rt-14-dev  # libFuzzer and the sanitizers for ops/fuzz.sh
  # libraries
  libzmq3-dev cppzmq-dev libcapnp-dev capnproto libpqxx-dev libpq-dev
  prometheus-cpp-dev libssl-dev libcurl4-openssl-dev libcpp-httplib-dev
  nlohmann-json3-dev libspdlog-dev libcli11-dev libgtest-dev libgmock-dev zlib1g-dev
  # real services used by the farm and its tests
  postgresql-15 postgresql-client-15 docker-registry buildah skopeo
  qemu-user-static binfmt-support busybox-static
  docker.io  # the docker backend; tests start their own dockerd (tests/support/docker_engine.h)
  # tools used by scripts
  curl jq ca-certificates util-linux
  prometheus  # promtool checks ops/prometheus and the dashboard's queries (ops/check-ops-files.sh)
  docker-compose  # `docker-compose config` checks docker-compose.yml (ops/check-ops-files.sh)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "manifold: these packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  echo "manifold: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
