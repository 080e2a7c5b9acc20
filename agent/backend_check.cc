#include "agent/backend_check.h"

#include <unistd.h>

#include <cstdlib>
#include <utility>
#include <vector>

#include "agent/buildah_builder.h"
#include "agent/tool_command.h"

namespace manifold {

namespace {

// Every executable called `name` in PATH, in PATH's order; just `name` when it contains
// a '/' (a path is used as given).
std::vector<std::string> ProgramsInPath(const std::string& name) {
  if (name.find('/') != std::string::npos) return {name};
  std::vector<std::string> found;
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) found.push_back(candidate);
    start = end + 1;
  }
  return found;
}

std::string OneLine(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

Status CheckBuildah(CommandRunner& runner, const std::string& buildah) {
  if (Status runs = BuildahBuilder::CheckAvailable(runner, buildah); !runs.ok()) return runs;
  Status storage = RunCheckCommand(runner, CommandSpec{{buildah, "info"}, {}, ""}, "buildah", "");
  if (!storage.ok()) {
    return Status::FailedPrecondition(
        "buildah cannot open its container storage (" + storage.message() +
        "); check the storage.conf it uses (CONTAINERS_STORAGE_CONF) and that its "
        "graphroot and runroot are writable");
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> FindDockerClient(CommandRunner& runner, const std::string& docker) {
  std::vector<std::string> candidates = ProgramsInPath(docker);
  if (candidates.empty()) candidates.push_back(docker);  // let the runner say why not
  Status first_error;
  for (const std::string& candidate : candidates) {
    Status usable = DockerBuilder::CheckClient(runner, candidate);
    if (usable.ok()) return candidate;
    if (first_error.ok()) first_error = usable;
  }
  return first_error;
}

Result<OpenedBackend> OpenBackend(const BackendOptions& options, CommandRunner& runner) {
  auto refuse = [&](const Status& why) {
    return Status::FailedPrecondition(
        OneLine("the " + options.name + " backend cannot build on this host: " + why.message()));
  };
  OpenedBackend opened;
  if (options.name == "buildah") {
    if (Status ok = CheckBuildah(runner, options.buildah); !ok.ok()) return refuse(ok);
    opened.builder = std::make_unique<BuildahBuilder>(
        runner, options.buildah, options.buildah_layers, options.buildah_sandbox);
    opened.description = "buildah (" + options.buildah + ")";
    return opened;
  }
  if (options.name == "docker") {
    Result<std::string> client = FindDockerClient(runner, options.docker.docker);
    if (!client.ok()) return refuse(client.status());
    DockerBuilderOptions docker = options.docker;
    docker.docker = *client;
    std::string engine_version;
    if (Status ok = DockerBuilder::CheckAvailable(runner, docker, &engine_version); !ok.ok()) {
      return refuse(ok);
    }
    opened.description = "docker (client " + docker.docker + ", engine " + engine_version + " at " +
                         docker.host +
                         (docker.network.empty() ? "" : ", RUN network " + docker.network) + ")";
    opened.builder = std::make_unique<DockerBuilder>(runner, std::move(docker));
    return opened;
  }
  if (options.name == "synthetic") {
    if (Status ok = SyntheticBuilder::Validate(options.synthetic); !ok.ok()) return refuse(ok);
    opened.builder = std::make_unique<SyntheticBuilder>(options.synthetic);
    opened.description =
        "synthetic (a benchmark tool: random images of the job's platform, "
        "no real build)";
    return opened;
  }
  return Status::InvalidArgument("unknown backend '" + options.name +
                                 "': the agent builds with buildah, docker or synthetic");
}

}  // namespace manifold
