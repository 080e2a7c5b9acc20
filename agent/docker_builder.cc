#include "agent/docker_builder.h"

#include <cstdlib>
#include <utility>

#include "agent/tool_command.h"

namespace manifold {

namespace {

// The first Docker release whose client builds with BuildKit only through buildx.
constexpr int kFirstClientNeedingBuildx = 23;

// The major version in `docker --version` output ("Docker version 20.10.24+dfsg1, build
// 297e128"), or -1 when there is none.
int ClientMajorVersion(const std::string& version_output) {
  const std::string marker = "version ";
  size_t at = version_output.find(marker);
  if (at == std::string::npos) return -1;
  const char* digits = version_output.c_str() + at + marker.size();
  char* end = nullptr;
  long major = std::strtol(digits, &end, 10);
  if (end == digits || major < 0 || major > 1000) return -1;
  return static_cast<int>(major);
}

// The per-job limits in `limits` that `docker build` cannot enforce, as the flags that set
// them ("--job-memory, --job-pids"); empty when there are none. The disk limit bounds the
// job's work dir, which the agent does whatever the backend.
std::string UnenforcedLimits(const JobLimits& limits) {
  std::string flags;
  auto add = [&](uint64_t value, const char* flag) {
    if (value == 0) return;
    if (!flags.empty()) flags += ", ";
    flags += flag;
  };
  add(limits.memory_bytes, "--job-memory");
  add(limits.cpu_millis, "--job-cpus");
  add(limits.pids, "--job-pids");
  return flags;
}

std::string FirstLine(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

}  // namespace

DockerBuilder::DockerBuilder(CommandRunner& runner, DockerBuilderOptions options)
    : runner_(runner), options_(std::move(options)) {}

std::string DockerBuilder::Name() const { return "docker"; }

std::string DockerBuilder::LocalReference(const BuildRequest& request) {
  size_t slash = request.image_name.rfind('/');
  size_t colon = request.image_name.rfind(':');
  bool tagged = colon != std::string::npos && (slash == std::string::npos || colon > slash);
  return tagged ? request.image_name : request.image_name + ":latest";
}

CommandSpec DockerBuilder::DockerCommand(std::vector<std::string> args) const {
  CommandSpec spec;
  spec.argv.push_back(options_.docker);
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.env_overrides = {{"DOCKER_HOST", options_.host}, {"DOCKER_BUILDKIT", "1"}};
  return spec;
}

std::string DockerBuilder::RunNetwork(const BuildRequest& request) const {
  return request.network.empty() ? options_.network : request.network;
}

std::vector<std::string> DockerBuilder::BuildArgv(const BuildRequest& request) const {
  std::vector<std::string> argv = {options_.docker,
                                   "build",
                                   "--progress=plain",
                                   "--platform",
                                   request.platform.ToString(),
                                   "-f",
                                   request.dockerfile_path};
  if (std::string network = RunNetwork(request); !network.empty()) {
    argv.push_back("--network=" + network);
  }
  AppendBuildOptions(request, &argv);
  if (request.pull) argv.push_back("--pull");  // docker's --pull always pulls, as buildx's
  argv.push_back("-t");
  argv.push_back(LocalReference(request));
  argv.push_back(request.context_dir);
  return argv;
}

Status DockerBuilder::Build(const BuildRequest& request,
                            const std::function<void(std::string_view)>& on_output,
                            const std::atomic<bool>* cancel) {
  if (Status s = CheckBuildRequest(request); !s.ok()) return s;
  const std::string platform = request.platform.ToString();
  const std::string reference = LocalReference(request);
  if (!request.annotations.empty()) {
    // `docker build` has no way to annotate the manifest; dropping them silently would
    // push an image other than the one asked for.
    return Status::InvalidArgument(
        "the docker backend cannot put manifest annotations on the " + platform +
        " image; build without --annotation manifest:... or on a buildah agent");
  }

  if (std::string flags = UnenforcedLimits(request.limits); !flags.empty()) {
    // Running the build anyway would pass off an unbounded build as a bounded one.
    return Status::InvalidArgument(
        "the docker backend cannot enforce per-job limits (" + flags + ") on the " + platform +
        " build: `docker build` takes none per build, so the Docker engine's own settings "
        "bound every build instead; build on a buildah agent, or leave " +
        flags + " unset on the build and on this agent's defaults");
  }

  std::vector<std::string> build_argv = BuildArgv(request);
  Status built = RunBuildStep(runner_, DockerCommand({build_argv.begin() + 1, build_argv.end()}),
                              "docker build for " + platform + " on the engine at " + options_.host,
                              on_output, cancel);
  if (!built.ok()) return built;

  // skopeo reads the image through the engine's API (as `docker save` would) and writes
  // the layout, compressing the layers as a registry push expects.
  Status exported = RunBuildStep(
      runner_,
      CommandSpec{{options_.skopeo, "copy", "--src-daemon-host", options_.host,
                   "docker-daemon:" + reference, "oci:" + request.layout_dir + ":latest"},
                  {},
                  ""},
      "skopeo copy of the " + platform + " image to OCI layout '" + request.layout_dir + "'",
      on_output, cancel);

  // The image now lives in the layout (or the export failed and the job is over); either
  // way the engine's copy is garbage. Its layers stay in the build cache.
  RunHousekeepingCommand(runner_, DockerCommand({"image", "rm", reference}), on_output);
  return exported;
}

Status DockerBuilder::CheckClient(CommandRunner& runner, const std::string& docker) {
  std::string version;
  Status runs = RunCheckCommand(
      runner, CommandSpec{{docker, "--version"}, {}, ""}, "the docker client",
      "install the Docker engine's client (Debian: docker.io) or give its path with --docker",
      &version);
  if (!runs.ok()) return runs;
  if (RunCheckCommand(runner, CommandSpec{{docker, "buildx", "version"}, {}, ""}, "", "").ok()) {
    return Status::Ok();
  }
  int major = ClientMajorVersion(version);
  if (major >= 0 && major < kFirstClientNeedingBuildx) return Status::Ok();
  return Status::FailedPrecondition(
      "the docker client '" + docker + "' (" + FirstLine(version) +
      ") builds with BuildKit only through the buildx plugin, which it lacks; install "
      "docker-buildx, or give the engine's own client with --docker (Debian's docker.io "
      "installs one that has BuildKit built in)");
}

Status DockerBuilder::CheckAvailable(CommandRunner& runner, const DockerBuilderOptions& options,
                                     std::string* engine_version) {
  if (Status client = CheckClient(runner, options.docker); !client.ok()) return client;
  std::string version;
  CommandSpec server{{options.docker, "version", "--format", "{{.Server.Version}}"},
                     {{"DOCKER_HOST", options.host}},
                     ""};
  Status answers = RunCheckCommand(runner, server, "the docker client", "", &version);
  if (!answers.ok()) {
    return Status::FailedPrecondition("the Docker engine at " + options.host +
                                      " does not answer (" + answers.message() +
                                      "); start dockerd or point --docker-host at its socket");
  }
  Status skopeo =
      RunCheckCommand(runner, CommandSpec{{options.skopeo, "--version"}, {}, ""}, "skopeo",
                      "the docker backend exports images with it; install "
                      "skopeo 1.9 or later, or give its path with --skopeo");
  if (!skopeo.ok()) return skopeo;
  if (engine_version != nullptr) *engine_version = FirstLine(version);
  return Status::Ok();
}

}  // namespace manifold
