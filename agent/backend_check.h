// Backend selection for the agent: which Builder it runs (buildah or docker), checked at
// start-up so that a host whose backend cannot build is refused before it registers,
// with one line that tells the operator what to fix, instead of failing every job it is
// given.
//
// The checks run the backend's real tools: `buildah version` and `buildah info` (which
// opens the container storage, so an unwritable storage fails here); for docker, a
// client that can run BuildKit builds, the engine answering at its address, and skopeo;
// then what the engine's sandbox gives RUN steps (`docker info`: a user namespace or a
// rootless engine, seccomp), each shortfall against buildah's sandbox being a warning,
// as is an agent that puts every build's RUN steps on the engine's host network.
// When the docker client is given by name (the default "docker"), every program of that
// name in PATH is tried in order, because the first one may be a client without the
// buildx plugin while the engine's own client further down works.
//
// Thread-safety: OpenBackend may run from any thread; the builder it returns is as
// thread-safe as its type says, and uses the runner, which must outlive it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/buildah_builder.h"
#include "agent/builder.h"
#include "agent/command_runner.h"
#include "agent/docker_builder.h"
#include "agent/image_store.h"
#include "agent/synthetic_builder.h"
#include "common/status.h"

namespace manifold {

struct BackendOptions {
  // "buildah", "docker", or "synthetic" (a benchmark tool: random images, no build).
  std::string name = "buildah";
  std::string buildah = "buildah";
  // buildah's layer cache; the agent turns it off when it serves several platforms.
  bool buildah_layers = true;
  // How buildah isolates RUN steps (the agent fills in its sandbox network).
  BuildahSandbox buildah_sandbox;
  // The cap and floor of buildah's container storage.
  ImageStoreOptions buildah_store;
  DockerBuilderOptions docker;
  SyntheticBuildOptions synthetic;
};

struct OpenedBackend {
  // buildah's container storage, which the builder uses (so it goes last); null for other
  // backends. The agent starts its passes (ImageStore::Start) once its metrics exist.
  std::unique_ptr<ImageStore> image_store;
  std::unique_ptr<Builder> builder;
  // What was found, for the agent's log: "docker (client /usr/bin/docker, engine 20.10.24
  // at unix:///run/docker.sock)".
  std::string description;
  // Ways the backend's sandbox falls short of what RUN steps of untrusted Dockerfiles
  // need, one line each saying how to fix it, for the agent to log as warnings. They do
  // not stop the agent: the operator may trust every build.
  std::vector<std::string> warnings;
};

// Checks that the named backend can build on this host and returns it ready to use.
// InvalidArgument for an unknown backend name; FailedPrecondition, in one line starting
// with "the <name> backend cannot build on this host: ", when a check fails.
Result<OpenedBackend> OpenBackend(const BackendOptions& options, CommandRunner& runner);

// The first docker client that can run BuildKit builds: `docker` itself when it is a
// path, else the first program of that name in PATH that can. The first candidate's
// error when none can.
Result<std::string> FindDockerClient(CommandRunner& runner, const std::string& docker);

}  // namespace manifold
