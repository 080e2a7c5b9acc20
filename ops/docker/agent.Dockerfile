# syntax=docker/dockerfile:1
# manifold-agent on Debian 12 with buildah. Build it for the platform it will build for
# (docker build --platform linux/arm64 ..., or `platform:` in docker-compose.yml): an agent
# builds natively for its own architecture. Run it privileged (buildah mounts and chroots).
#   docker build -f ops/docker/agent.Dockerfile -t manifold-agent .

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
# The image has no CLI, so no static libcurl for it (ops/curl.sh); an agent holds one
# ZeroMQ connection, so it links the system's libzmq (ops/zmq.sh's matters to the
# coordinator); so no source entries either.
ENV MANIFOLD_CLI_CURL=system MANIFOLD_ZMQ=system
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
COPY ops/build.sh ops/runtime-packages.sh ops/
COPY ops/cmake ops/cmake
RUN MANIFOLD_BUILD_DIR=/build MANIFOLD_BUILD_TYPE=Release MANIFOLD_BUILD_TESTS=0 \
    MANIFOLD_TARGET_ARCH="${TARGETARCH:-$(dpkg --print-architecture)}" \
    ./ops/build.sh manifold-agent
# The runtime stage installs the packages that own the shared libraries the binary links.
RUN ./ops/runtime-packages.sh /build/agent/manifold-agent "${TARGETARCH:-$(dpkg --print-architecture)}" \
      >/build/runtime-packages \
 && cat /build/runtime-packages

# --platform=$TARGETPLATFORM is what BuildKit assumes anyway; buildah 1.28 needs it said,
# or after a stage of another platform it may take that platform's image for this one.
FROM --platform=$TARGETPLATFORM debian:12-slim
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /build/runtime-packages /tmp/runtime-packages
RUN apt-get update \
 && xargs -a /tmp/runtime-packages apt-get install -y --no-install-recommends \
      buildah ca-certificates \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages
# Container storage on a volume at /var/lib/containers: vfs works on any backing
# filesystem (overlay on the container's own overlay root does not).
RUN mkdir -p /etc/containers/registries.conf.d /var/lib/containers /var/lib/manifold-agent \
 && printf '[storage]\ndriver = "vfs"\nrunroot = "/run/containers/storage"\ngraphroot = "/var/lib/containers/storage"\n' \
      >/etc/containers/storage.conf \
 && printf 'unqualified-search-registries = ["docker.io"]\n' \
      >/etc/containers/registries.conf.d/50-manifold.conf
COPY --from=build /build/agent/manifold-agent /usr/local/bin/manifold-agent
# chroot isolation needs no user namespaces, runc or iptables inside the container; it is
# not a sandbox for untrusted Dockerfiles (the host's agents use --isolation oci).
ENV MANIFOLD_ISOLATION=chroot \
    MANIFOLD_WORK_DIR=/var/lib/manifold-agent
VOLUME ["/var/lib/containers", "/var/lib/manifold-agent"]
ENTRYPOINT ["/usr/local/bin/manifold-agent"]
