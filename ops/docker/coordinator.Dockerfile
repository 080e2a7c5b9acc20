# syntax=docker/dockerfile:1
# manifold-coordinator on Debian 12: a build stage (packages from ops/install-deps.sh, a
# Release build of the one binary) and a slim runtime stage with only the shared libraries
# it links.
#   docker build -f ops/docker/coordinator.Dockerfile -t manifold-coordinator .

# The build stage runs on the build machine's platform and cross-compiles for the target
# (TARGETARCH, set by BuildKit and buildah for --platform), so an arm64 image compiles at
# native speed on an x86-64 host; only the runtime stage's apt-get runs under emulation.
# Without --platform it builds for the host. It needs BuildKit (docker build's default
# since Docker 23; DOCKER_BUILDKIT=1 for Debian 12's docker.io 20.10) or buildah: docker's
# legacy builder cannot parse the empty --platform it would expand here.
# buildah 1.28 does not expand its own BUILDPLATFORM in FROM: give it as a build arg there
# (manifold build --build-arg BUILDPLATFORM=linux/amd64, as ops/build-images.sh does), or
# the build stage runs for the target platform, under emulation on a foreign host.
FROM --platform=$BUILDPLATFORM debian:12 AS build
ARG TARGETARCH
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive
# The image has no CLI, so no static libcurl for it (ops/curl.sh). It does get the libzmq
# with small message pipes (ops/zmq.sh, from Debian's source entries that
# ops/install-deps.sh adds), so that its memory follows the fleet's size, not its age.
ENV MANIFOLD_CLI_CURL=system
WORKDIR /src
# Packages first, so that a source change does not reinstall them.
COPY ops/install-deps.sh ops/install-deps.sh
RUN ./ops/install-deps.sh --build "${TARGETARCH:-$(dpkg --print-architecture)}" \
 && rm -rf /var/lib/apt/lists/*
# Only what CMake reads (no build/ or .farm/ from a developer's checkout).
COPY CMakeLists.txt ./
COPY schema schema
COPY common common
COPY coordinator coordinator
COPY agent agent
COPY cli cli
COPY ops/build.sh ops/runtime-packages.sh ops/zmq.sh ops/source-lib.sh ops/
COPY ops/cmake ops/cmake
RUN MANIFOLD_BUILD_DIR=/build MANIFOLD_BUILD_TYPE=Release MANIFOLD_BUILD_TESTS=0 \
    MANIFOLD_TARGET_ARCH="${TARGETARCH:-$(dpkg --print-architecture)}" \
    ./ops/build.sh manifold-coordinator
# The runtime stage installs the packages that own the shared libraries the binary links.
RUN ./ops/runtime-packages.sh /build/coordinator/manifold-coordinator "${TARGETARCH:-$(dpkg --print-architecture)}" \
      >/build/runtime-packages \
 && cat /build/runtime-packages

# --platform=$TARGETPLATFORM is what BuildKit assumes anyway; buildah 1.28 needs it said,
# or after a stage of another platform it may take that platform's image for this one.
FROM --platform=$TARGETPLATFORM debian:12-slim
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /build/runtime-packages /tmp/runtime-packages
RUN apt-get update \
 && xargs -a /tmp/runtime-packages apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages \
 && useradd --system --home-dir /var/lib/manifold --create-home --shell /usr/sbin/nologin manifold
COPY --from=build /build/coordinator/manifold-coordinator /usr/local/bin/manifold-coordinator
USER manifold
WORKDIR /var/lib/manifold
ENV MANIFOLD_API_LISTEN=0.0.0.0:7080 \
    MANIFOLD_AGENT_LISTEN=tcp://0.0.0.0:7081 \
    MANIFOLD_STATE_DIR=/var/lib/manifold
EXPOSE 7080 7081
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s \
  CMD curl -sf http://127.0.0.1:7080/readyz >/dev/null || exit 1
ENTRYPOINT ["/usr/local/bin/manifold-coordinator"]
