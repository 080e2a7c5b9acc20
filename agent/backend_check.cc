#include "agent/backend_check.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>
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
  std::string output;
  Status storage =
      RunCheckCommand(runner, CommandSpec{{buildah, "info"}, {}, ""}, "buildah", "", &output);
  if (!storage.ok()) {
    return Status::FailedPrecondition(
        "buildah cannot open its container storage (" + storage.message() +
        "); check the storage.conf it uses (CONTAINERS_STORAGE_CONF) and that its "
        "graphroot and runroot are writable");
  }
  // buildah then guesses a driver and logs this error at the top of every build's output.
  const std::string unset = "The storage 'driver' option must be set in ";
  if (size_t at = output.find(unset); at != std::string::npos) {
    std::string file = output.substr(at + unset.size());
    file = file.substr(0, file.find(" to guarantee"));
    return Status::FailedPrecondition(
        file +
        " (buildah's storage.conf, CONTAINERS_STORAGE_CONF) sets no storage driver: add "
        "driver = \"overlay\" under [storage] (or \"vfs\" where overlay cannot run)");
  }
  return Status::Ok();
}

// The names in the engine's `docker info` SecurityOptions ("name=seccomp,profile=default"
// gives "seccomp").
Result<std::vector<std::string>> EngineSecurityOptions(CommandRunner& runner,
                                                       const DockerBuilderOptions& docker) {
  std::string output;
  Status ran =
      RunCheckCommand(runner,
                      CommandSpec{{docker.docker, "info", "--format", "{{json .SecurityOptions}}"},
                                  {{"DOCKER_HOST", docker.host}},
                                  ""},
                      "the docker client", "", &output);
  if (!ran.ok()) return ran;
  // The runner merges stderr in, where the client may print WARNING lines: the list is
  // the line that starts with '['.
  nlohmann::json options;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line) && !options.is_array();) {
    if (line.rfind('[', 0) == 0) {
      options = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    }
  }
  if (!options.is_array()) {
    return Status::FailedPrecondition("`docker info` printed no list of security options");
  }
  std::vector<std::string> names;
  for (const nlohmann::json& option : options) {
    if (!option.is_string()) continue;
    std::string text = option.get<std::string>();
    if (text.rfind("name=", 0) != 0) continue;
    names.push_back(text.substr(5, text.find(',') - 5));
  }
  return names;
}

// What the engine's sandbox gives RUN steps: a few words for the description, and a
// warning for each way it falls short of buildah's.
std::string CheckDockerSandbox(CommandRunner& runner, const DockerBuilderOptions& docker,
                               std::vector<std::string>* warnings) {
  const std::string engine = "the Docker engine at " + docker.host;
  if (docker.network == "host") {
    warnings->push_back(
        "--docker-network host puts the RUN steps of every build that does not ask for "
        "--network none on the engine's own network (the host's, unless dockerd runs "
        "rootless): they reach the host's loopback services and the link-local metadata "
        "address; use --docker-network none, or give the engine a bridge and leave "
        "--docker-network unset");
  }
  Result<std::vector<std::string>> names = EngineSecurityOptions(runner, docker);
  if (!names.ok()) {
    warnings->push_back("cannot read the security options of " + engine + " (" +
                        names.status().message() + "); its build sandbox is unchecked");
    return "sandbox unchecked";
  }
  auto has = [&](const std::string& name) {
    return std::find(names->begin(), names->end(), name) != names->end();
  };
  std::string sandbox = has("rootless") ? "rootless engine"
                        : has("userns") ? "userns-remap"
                                        : "steps' root is the host's root";
  if (!has("rootless") && !has("userns")) {
    warnings->push_back(
        "RUN steps run as the host's root: " + engine +
        " runs neither rootless nor with --userns-remap; start dockerd with "
        "--userns-remap=default (or rootless) so that a step's root is an unprivileged host "
        "user");
  }
  if (has("seccomp")) {
    sandbox += ", seccomp";
  } else {
    warnings->push_back(engine +
                        " has no seccomp profile, so RUN steps may make any system call; "
                        "start dockerd without --seccomp-profile=unconfined");
  }
  return sandbox;
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
    Result<std::unique_ptr<ImageStore>> store =
        ImageStore::Open(runner, options.buildah, options.buildah_store);
    if (!store.ok()) return refuse(store.status());
    opened.image_store = std::move(*store);
    opened.builder =
        std::make_unique<BuildahBuilder>(runner, options.buildah, options.buildah_layers,
                                         options.buildah_sandbox, opened.image_store.get());
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
    std::string sandbox = CheckDockerSandbox(runner, docker, &opened.warnings);
    opened.description = "docker (client " + docker.docker + ", engine " + engine_version + " at " +
                         docker.host +
                         (docker.network.empty() ? "" : ", RUN network " + docker.network) +
                         ", BuildKit sandbox: " + sandbox + ")";
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
