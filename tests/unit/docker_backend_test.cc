// The docker backend's choices that need no engine: which --network a build's RUN steps
// get from the build's own network and the agent's --docker-network, the refusal of
// per-job limits that `docker build` cannot enforce, and the start-up warnings read from
// the engine's `docker info`. The runner is a fake that records what would have run and
// answers with canned output (the real engine is in
// tests/integration/docker_builder_test.cc).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "agent/backend_check.h"
#include "agent/docker_builder.h"
#include "tests/support/temp_dir.h"

namespace manifold {
namespace {

// Records every command; answers one whose arguments after the program are a key of
// `answers` with that output and exit 0, and every other with exit 0 and no output, or
// with exit 1 when it is in `failing`.
class RecordingRunner : public CommandRunner {
 public:
  Result<int> Run(const CommandSpec& spec, const std::function<void(std::string_view)>& on_output,
                  const std::atomic<bool>*) override {
    commands.push_back(spec.argv);
    std::string args;
    for (size_t i = 1; i < spec.argv.size(); ++i) args += (i > 1 ? " " : "") + spec.argv[i];
    auto answer = answers.find(args);
    if (answer != answers.end() && on_output) on_output(answer->second);
    return failing.count(args) ? 1 : 0;
  }
  std::vector<std::vector<std::string>> commands;
  std::map<std::string, std::string> answers;
  std::set<std::string> failing;
};

class DockerBuilderNetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_.path() + "/context");
    std::ofstream(dir_.path() + "/Dockerfile") << "FROM busybox\nRUN true\n";
    request_.platform = {"linux", "amd64", ""};
    request_.context_dir = dir_.path() + "/context";
    request_.dockerfile_path = dir_.path() + "/Dockerfile";
    request_.image_name = "manifold-unit";
    request_.layout_dir = dir_.path() + "/layout";
  }

  // The --network=... arguments of the docker build for request_ on an agent whose
  // --docker-network is agent_network.
  std::vector<std::string> NetworkArgs(const std::string& agent_network) {
    DockerBuilderOptions options;
    options.network = agent_network;
    DockerBuilder builder(runner_, options);
    std::vector<std::string> found;
    for (const std::string& arg : builder.BuildArgv(request_)) {
      if (arg.rfind("--network", 0) == 0) found.push_back(arg);
    }
    return found;
  }

  test::TempDir dir_{"manifold-docker-unit"};
  RecordingRunner runner_;
  BuildRequest request_;
};

using Args = std::vector<std::string>;

TEST_F(DockerBuilderNetworkTest, ABuildWithoutANetworkGetsTheAgentsSetting) {
  EXPECT_EQ(NetworkArgs(""), Args{}) << "the engine's default bridge takes no flag";
  EXPECT_EQ(NetworkArgs("none"), Args{"--network=none"});
  EXPECT_EQ(NetworkArgs("host"), Args{"--network=host"});
}

TEST_F(DockerBuilderNetworkTest, ABuildsNoneWinsOverEveryAgentSetting) {
  request_.network = "none";
  for (const char* agent : {"", "none", "host"}) {
    EXPECT_EQ(NetworkArgs(agent), Args{"--network=none"}) << "agent --docker-network " << agent;
  }
}

TEST_F(DockerBuilderNetworkTest, ABuildsEntitledHostIsTheEnginesHostNetwork) {
  request_.network = "host";
  for (const char* agent : {"", "none", "host"}) {
    EXPECT_EQ(NetworkArgs(agent), Args{"--network=host"}) << "agent --docker-network " << agent;
  }
}

TEST_F(DockerBuilderNetworkTest, LimitsTheEngineCannotEnforceAreRefusedBeforeAnythingRuns) {
  DockerBuilder builder(runner_, DockerBuilderOptions{});
  request_.limits.memory_bytes = 512u << 20;
  request_.limits.pids = 100;
  Status status = builder.Build(request_, {}, nullptr);
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument) << status.message();
  EXPECT_FALSE(status.retryable());
  EXPECT_NE(status.message().find("the docker backend cannot enforce per-job limits "
                                  "(--job-memory, --job-pids) on the linux/amd64 build"),
            std::string::npos)
      << status.message();
  EXPECT_NE(status.message().find("build on a buildah agent"), std::string::npos)
      << status.message();
  EXPECT_TRUE(runner_.commands.empty()) << "ran " << runner_.commands.front().front();
}

TEST_F(DockerBuilderNetworkTest, ADiskLimitAloneBuilds) {
  // The disk limit bounds the job's work dir, which the agent does for every backend.
  DockerBuilder builder(runner_, DockerBuilderOptions{});
  request_.limits.disk_bytes = 1u << 30;
  Status status = builder.Build(request_, {}, nullptr);
  EXPECT_TRUE(status.ok()) << status.message();
  ASSERT_FALSE(runner_.commands.empty());
  EXPECT_EQ(runner_.commands.front()[1], "build");
}

// An agent on an engine whose `docker info` lists `security_options` (as JSON), with the
// agent's --docker-network `network`: the warnings OpenBackend returns, and its
// description.
OpenedBackend OpenDockerBackend(const std::string& security_options, const std::string& network) {
  RecordingRunner runner;
  const std::string info = "info --format {{json .SecurityOptions}}";
  runner.answers = {{"--version", "Docker version 20.10.24+dfsg1, build 5d6db84\n"},
                    {"version --format {{.Server.Version}}", "20.10.24+dfsg1\n"},
                    {info, "WARNING: No swap limit support\n" + security_options + "\n"}};
  runner.failing = {"buildx version"};
  BackendOptions options;
  options.name = "docker";
  options.docker.docker = "/usr/local/bin/fake-docker";
  options.docker.network = network;
  Result<OpenedBackend> opened = OpenBackend(options, runner);
  EXPECT_TRUE(opened.ok()) << opened.status().message();
  return opened.ok() ? std::move(*opened) : OpenedBackend{};
}

bool AnyHas(const std::vector<std::string>& lines, const std::string& part) {
  return std::any_of(lines.begin(), lines.end(),
                     [&](const std::string& line) { return line.find(part) != std::string::npos; });
}

TEST(DockerBackendCheckTest, AnEngineThatRunsStepsAsTheHostsRootIsWarnedAbout) {
  OpenedBackend opened = OpenDockerBackend(R"(["name=seccomp,profile=default"])", "none");
  EXPECT_NE(opened.description.find(
                "RUN network none, BuildKit sandbox: steps' root is the host's root, seccomp)"),
            std::string::npos)
      << opened.description;
  ASSERT_EQ(opened.warnings.size(), 1u);
  EXPECT_NE(opened.warnings[0].find("runs neither rootless nor with --userns-remap; start "
                                    "dockerd with --userns-remap=default"),
            std::string::npos)
      << opened.warnings[0];
}

TEST(DockerBackendCheckTest, AUserNamespaceWithSeccompAndNoHostNetworkIsQuiet) {
  for (const char* options : {R"(["name=seccomp,profile=default","name=userns"])",
                              R"(["name=seccomp,profile=default","name=rootless"])"}) {
    OpenedBackend opened = OpenDockerBackend(options, "");
    EXPECT_TRUE(opened.warnings.empty()) << options << ": " << opened.warnings.front();
  }
}

TEST(DockerBackendCheckTest, HostNetworkAndNoSeccompAreWarnedAbout) {
  OpenedBackend opened = OpenDockerBackend(R"(["name=userns"])", "host");
  EXPECT_EQ(opened.warnings.size(), 2u);
  EXPECT_TRUE(AnyHas(opened.warnings, "--docker-network host puts the RUN steps of every build"));
  EXPECT_TRUE(AnyHas(opened.warnings, "has no seccomp profile"));
  EXPECT_NE(opened.description.find("BuildKit sandbox: userns-remap)"), std::string::npos)
      << opened.description;
}

TEST(DockerBackendCheckTest, UnreadableSecurityOptionsLeaveTheSandboxUnchecked) {
  OpenedBackend opened = OpenDockerBackend("not a list", "none");
  ASSERT_EQ(opened.warnings.size(), 1u);
  EXPECT_NE(opened.warnings[0].find("its build sandbox is unchecked"), std::string::npos)
      << opened.warnings[0];
}

}  // namespace
}  // namespace manifold
