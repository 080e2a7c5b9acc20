# syntax=docker/dockerfile:1
# manifold-coordinator on Debian 12: a build stage (packages from ops/install-deps.sh, a
# Release build of the one binary) and a slim runtime stage with only the shared libraries
# it links.
#   docker build -f ops/docker/coordinator.Dockerfile -t manifold-coordinator .

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
RUN MANIFOLD_BUILD_DIR=/build MANIFOLD_BUILD_TYPE=Release ./ops/build.sh manifold-coordinator
# The runtime packages are the ones that own the shared libraries the binary links
# (matched by multiarch directory and file name, which also works with merged /usr).
RUN ldd /build/coordinator/manifold-coordinator \
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
