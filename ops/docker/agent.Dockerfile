# syntax=docker/dockerfile:1
# manifold-agent on Debian 12 with buildah. Build it for the platform it will build for
# (docker build --platform linux/arm64 ..., or `platform:` in docker-compose.yml): an agent
# builds natively for its own architecture. Run it privileged (buildah mounts and chroots).
#   docker build -f ops/docker/agent.Dockerfile -t manifold-agent .

FROM debian:12 AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src
# Packages first, so that a source change does not reinstall them.
COPY ops/install-deps.sh ops/install-deps.sh
RUN ./ops/install-deps.sh && rm -rf /var/lib/apt/lists/*
# Only what CMake reads (no build/ or .farm/ from a developer's checkout).
COPY CMakeLists.txt ./
COPY schema schema
COPY common common
COPY coordinator coordinator
COPY agent agent
COPY cli cli
COPY tests tests
COPY ops/build.sh ops/build.sh
RUN MANIFOLD_BUILD_DIR=/build MANIFOLD_BUILD_TYPE=Release ./ops/build.sh manifold-agent
# The runtime packages are the ones that own the shared libraries the binary links
# (matched by multiarch directory and file name, which also works with merged /usr).
RUN ldd /build/agent/manifold-agent \
      | awk '$2 == "=>" && $3 ~ /^\// {print $3}' \
      | while read -r lib; do \
          dpkg -S "*/$(basename "$(dirname "$lib")")/$(basename "$lib")" | head -n 1 | cut -d: -f1; \
        done \
      | sort -u >/build/runtime-packages \
 && cat /build/runtime-packages

FROM debian:12-slim
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
# chroot isolation needs no user namespaces or runc inside the container.
ENV BUILDAH_ISOLATION=chroot \
    MANIFOLD_WORK_DIR=/var/lib/manifold-agent
VOLUME ["/var/lib/containers", "/var/lib/manifold-agent"]
ENTRYPOINT ["/usr/local/bin/manifold-agent"]
