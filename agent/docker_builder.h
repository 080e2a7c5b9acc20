// DockerBuilder: the Builder backend that uses a host's Docker engine.
//
// One Build is three commands: `docker build` with BuildKit (DOCKER_BUILDKIT=1) for
// exactly the requested platform, `skopeo copy` of the result from the engine
// (docker-daemon:) into an OCI image layout, and a best-effort `docker image rm` so that
// the engine does not keep one image per job (its BuildKit cache stays, which is what
// makes the next build of the same repository fast). The client and skopeo both talk to
// the engine at options.host. A cancel stops the docker client's process group; BuildKit
// then cancels the build on the engine, RUN steps included, when the client's session ends.
//
// RUN steps run in BuildKit's sandbox on the engine: their own PID, mount, IPC and UTS
// namespaces, and the network BuildArgv picks (see RunNetwork). How far that sandbox reaches
// (user namespace, seccomp, the bridge's reach to the host) is the engine's configuration,
// checked where it can be by backend_check.h. `docker build` with BuildKit takes no per-build
// memory, CPU or process limit, so Build refuses a request that carries one rather than
// ignore it; the engine's own settings bound builds instead (ops/README.md, "Docker
// backend").
//
// The client must be able to run BuildKit builds: Docker's own clients before 23.0 (such
// as Debian's docker.io) have BuildKit built in; later ones need the buildx plugin and
// stop with an error when it is missing. CheckAvailable tells them apart at start-up.
//
// Thread-safety: Build and CheckAvailable may run concurrently from several threads as
// long as the CommandRunner allows it (SubprocessRunner does); the engine serializes what
// it must. Image names are per job attempt, so concurrent builds never share one. The
// runner must outlive the builder.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/builder.h"
#include "agent/command_runner.h"
#include "common/status.h"

namespace manifold {

struct DockerBuilderOptions {
  // The docker client: a name looked up in PATH or a path.
  std::string docker = "docker";
  // The engine's address as DOCKER_HOST takes it.
  std::string host = "unix:///var/run/docker.sock";
  // The network of RUN steps of builds that leave theirs unset (--docker-network): empty for the
  // engine's default (its bridge network, NAT'd), "none", or "host" (the engine's own network
  // namespace: the host's loopback and every service on it, unless dockerd runs rootless).
  // An engine without a bridge (dockerd --bridge=none) needs "none" or "host".
  std::string network;
  std::string skopeo = "skopeo";
};

class DockerBuilder : public Builder {
 public:
  DockerBuilder(CommandRunner& runner, DockerBuilderOptions options);

  std::string Name() const override;

  Status Build(const BuildRequest& request,
               const std::function<void(std::string_view output)>& on_output,
               const std::atomic<bool>* cancel) override;

  // Checks that the client can run BuildKit builds, that the engine at options.host
  // answers, and that skopeo runs; FailedPrecondition saying how to fix the first thing
  // that does not. On success *engine_version (when given) is the engine's version.
  // Meant for agent start-up, so a broken host is refused before it takes jobs.
  static Status CheckAvailable(CommandRunner& runner, const DockerBuilderOptions& options,
                               std::string* engine_version = nullptr);

  // Checks only the client (see CheckAvailable), without talking to an engine.
  static Status CheckClient(CommandRunner& runner, const std::string& docker);

  // The argv of the `docker build` command for request (exposed for tests and logs).
  std::vector<std::string> BuildArgv(const BuildRequest& request) const;

  // The network of request's RUN steps: the build's own "none" or "host" (the agent's policy
  // has checked the network.host entitlement), else options.network. Empty: the engine's
  // default.
  std::string RunNetwork(const BuildRequest& request) const;

 private:
  // request.image_name with a tag, as docker-daemon: references require one.
  static std::string LocalReference(const BuildRequest& request);
  CommandSpec DockerCommand(std::vector<std::string> args) const;

  CommandRunner& runner_;
  DockerBuilderOptions options_;
};

}  // namespace manifold
