// DockerBuilder against a real Docker engine (dockerd from Debian's docker.io) that the
// test starts with its own data root and socket (tests/support/docker_engine.h). Base
// images come from a real local registry, filled by ops/base-image.sh and given to the
// engine as its Docker Hub mirror; what the builder writes is pushed with manifold's own
// registry client and read back with skopeo. The agent's start-up check runs the real
// manifold-agent binary. A rebuild's output shows the cache step counter what BuildKit
// really prints.
#include "agent/docker_builder.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/backend_check.h"
#include "agent/cache_steps.h"
#include "agent/command_runner.h"
#include "common/digest.h"
#include "common/layout.h"
#include "common/platform.h"
#include "common/registry.h"
#include "tests/support/builder_run.h"
#include "tests/support/docker_engine.h"
#include "tests/support/farm.h"
#include "tests/support/options_image.h"
#include "tests/support/ports.h"
#include "tests/support/read_image.h"
#include "tests/support/registry_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace manifold {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using test::CommandResult;
using test::RunCommand;

const Platform kAmd64{"linux", "amd64", ""};
const Platform kArm64{"linux", "arm64", ""};

void WriteFile(const fs::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Two stages from the registry's busybox, a COPY --from between them, a build arg, a file
// from the context, and a last stage that fails, so success proves --target was honoured.
// The RUN output names the architecture it ran on; BuildKit's step headers show the
// command with $(uname -m) unexpanded, so "built for x86_64" can only come from the run.
// A build secret's digest, not the secret, is recorded from its mount.
constexpr const char* kMultiStageDockerfile =
    "FROM busybox AS build\n"
    "ARG GREETING=unset\n"
    "RUN echo \"built for $(uname -m) with $GREETING\" > /result && cat /result\n"
    "\n"
    "FROM busybox AS final\n"
    "COPY --from=build /result /result\n"
    "COPY note.txt /note.txt\n"
    "RUN echo \"final stage sees: $(cat /result)\"\n"
    "RUN --mount=type=secret,id=token sha256sum /run/secrets/token | cut -d' ' -f1 > "
    "/token.sha256\n"
    "\n"
    "FROM final AS broken\n"
    "RUN exit 9\n";

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

class DockerBuilderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status registry = registry_.Start();
    ASSERT_TRUE(registry.ok()) << registry.message();
    // The farm's two-platform busybox, as every farm has it.
    CommandResult base = RunCommand(
        {test::SourceDir() + "/ops/base-image.sh", registry_.host(), dir_.path() + "/base"},
        seconds(600));
    ASSERT_EQ(base.exit_code, 0) << base.output;

    test::DockerEngineOptions engine_options;
    engine_options.registry_mirrors = {"http://" + registry_.host()};
    auto engine_start = std::chrono::steady_clock::now();
    Status engine = engine_.Start(engine_options);
    ASSERT_TRUE(engine.ok()) << engine.message();
    engine_start_took_ = std::chrono::steady_clock::now() - engine_start;

    Result<std::string> client = FindDockerClient(runner_, "docker");
    ASSERT_TRUE(client.ok()) << client.status().message();
    options_.docker = *client;
    options_.host = engine_.host();
    options_.network = "none";  // the engine has no bridge network
    std::string version;
    Status available = DockerBuilder::CheckAvailable(runner_, options_, &version);
    ASSERT_TRUE(available.ok()) << available.message();
    std::cout << "docker engine " << version << " with " << engine_.storage_driver() << ", client "
              << options_.docker << ", answering after " << Seconds(engine_start_took_) << " s\n";

    fs::create_directories(fs::path(dir_.path()) / "context");
    fs::create_directories(fs::path(dir_.path()) / "dockerfiles");
    WriteFile(fs::path(dir_.path()) / "context" / "note.txt", "a file from the context\n");
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << "---- dockerd log ----\n" << engine_.LogTail() << "\n";
  }

  // A request with the Dockerfile outside the context, as the agent has it.
  BuildRequest MakeRequest(const Platform& platform, const std::string& dockerfile,
                           const std::string& name) {
    fs::path dockerfile_path = fs::path(dir_.path()) / "dockerfiles" / (name + ".Dockerfile");
    WriteFile(dockerfile_path, dockerfile);
    BuildRequest request;
    request.platform = platform;
    request.context_dir = dir_.path() + "/context";
    request.dockerfile_path = dockerfile_path.string();
    request.image_name = "manifold-test-" + name;
    request.layout_dir = dir_.path() + "/layout-" + name;
    return request;
  }

  CommandResult Docker(std::vector<std::string> args) {
    args.insert(args.begin(), options_.docker);
    return RunCommand(args, seconds(60), {{"DOCKER_HOST", engine_.host()}});
  }

  // The image's files as a runtime would see them: every layer of the image pulled back
  // from the registry, applied bottom to top into one directory.
  fs::path Unpack(const std::string& reference) {
    fs::path root = fs::path(dir_.path()) / ("rootfs-" + std::to_string(++unpacked_));
    fs::create_directories(root);
    for (const std::string& blob : test::PullLayers(reference, root.string() + ".layout")) {
      CommandResult extracted = RunCommand({"tar", "-xzf", blob, "-C", root.string()}, seconds(60));
      EXPECT_EQ(extracted.exit_code, 0) << extracted.output;
    }
    return root;
  }

  // Builds the multi-stage Dockerfile for `platform`, pushes the layout to the registry
  // with manifold's client and checks what skopeo reads back.
  void BuildPushAndReadBack(const Platform& platform, const std::string& uname_m) {
    DockerBuilder builder(runner_, options_);
    EXPECT_EQ(builder.Name(), "docker");
    const std::string name = platform.architecture;
    BuildRequest request = MakeRequest(platform, kMultiStageDockerfile, name);
    request.build_args = {{"GREETING", "hello-docker"}};
    request.target = "final";
    const std::string secret = "docker-build-secret-" + name + "-5f1e0c";
    WriteFile(fs::path(dir_.path()) / "token", secret);
    request.secret_files = {{"token", dir_.path() + "/token"}};
    std::atomic<bool> cancel{false};
    test::BuildOutcome outcome = test::BuildWithWatchdog(builder, request, seconds(300), cancel);
    ASSERT_TRUE(outcome.status.ok()) << outcome.status.message() << "\nlog:\n" << outcome.log;

    const std::string ran = "built for " + uname_m + " with hello-docker";
    EXPECT_NE(outcome.log.find(ran), std::string::npos) << outcome.log;
    EXPECT_NE(outcome.log.find("final stage sees: " + ran), std::string::npos) << outcome.log;
    EXPECT_NE(outcome.log.find("manifold: " + options_.docker +
                               " build --progress=plain --platform " + platform.ToString()),
              std::string::npos)
        << outcome.log;
    EXPECT_NE(outcome.log.find("manifold: skopeo copy --src-daemon-host " + engine_.host() +
                               " docker-daemon:manifold-test-" + name + ":latest oci:"),
              std::string::npos)
        << outcome.log;

    // The engine's copy is gone once the layout holds the image.
    CommandResult images = Docker({"image", "ls", "--quiet", "manifold-test-" + name});
    EXPECT_EQ(images.exit_code, 0) << images.output;
    EXPECT_EQ(images.output, "") << "the engine kept the image";

    Result<OciLayoutImage> image = OpenLayoutImage(request.layout_dir);
    ASSERT_TRUE(image.ok()) << image.status().message();
    RegistryClient registry(registry_.host());
    PushStats stats;
    Result<Descriptor> pushed = registry.PushLayout(*image, "docker-built", &stats);
    ASSERT_TRUE(pushed.ok()) << pushed.status().message();
    std::cout << platform.ToString() << ": built and exported in " << Seconds(outcome.elapsed)
              << " s, pushed " << stats.blobs_pushed << " blobs (" << stats.bytes_pushed
              << " bytes)\n";

    const std::string reference = registry_.host() + "/docker-built@" + pushed->digest;
    json manifest = test::RawManifest(reference);
    EXPECT_EQ(manifest.value("mediaType", ""), "application/vnd.oci.image.manifest.v1+json");
    json config_json = test::ImageConfig(reference);
    EXPECT_EQ(config_json.value("architecture", ""), platform.architecture);
    EXPECT_EQ(config_json.value("os", ""), "linux");

    fs::path root = Unpack(reference);
    EXPECT_EQ(ReadFile(root / "result"), ran + "\n");
    EXPECT_EQ(ReadFile(root / "note.txt"), "a file from the context\n");
    EXPECT_TRUE(fs::exists(root / "bin" / "busybox")) << "the busybox base is missing";
    EXPECT_EQ(ReadFile(root / "token.sha256"), DigestHex(Sha256Digest(secret)) + "\n");
    EXPECT_EQ(outcome.log.find(secret), std::string::npos);
    CommandResult leaked = RunCommand({"grep", "-rlF", secret, root.string()}, seconds(60));
    EXPECT_EQ(leaked.exit_code, 1) << "the image holds the secret: " << leaked.output;
  }

  test::TempDir dir_{"manifold-docker-test"};
  test::RegistryServer registry_;
  test::DockerEngine engine_;
  SubprocessRunner runner_;
  DockerBuilderOptions options_;
  int unpacked_ = 0;
  std::chrono::steady_clock::duration engine_start_took_{};
};

TEST_F(DockerBuilderTest, BuildsMultiStageAmd64ImageThatPushesAndReadsBack) {
  BuildPushAndReadBack(kAmd64, "x86_64");
}

TEST_F(DockerBuilderTest, BuildsArm64ImageUnderEmulation) {
  std::string binfmt = "/proc/sys/fs/binfmt_misc/" + QemuBinfmtName(kArm64);
  if (ReadFile(binfmt).rfind("enabled", 0) != 0) {
    GTEST_SKIP() << "arm64 RUN steps need QEMU: " << binfmt
                 << " is not enabled (run ops/binfmt.sh as root)";
  }
  BuildPushAndReadBack(kArm64, "aarch64");
}

// The agent's cache step counter reads BuildKit's real plain progress: a first build
// runs both steps after FROM, a second one of the same Dockerfile takes both from the
// engine's build cache ("#N CACHED").
TEST_F(DockerBuilderTest, RebuildShowsCachedStepsThatTheCounterCounts) {
  DockerBuilder builder(runner_, options_);
  const std::string dockerfile =
      "FROM busybox\nCOPY note.txt /note.txt\nRUN cat /note.txt > /copied.txt\n";
  std::vector<CacheSteps> counted;
  for (const char* name : {"cache-cold", "cache-warm"}) {
    BuildRequest request = MakeRequest(kAmd64, dockerfile, name);
    std::atomic<bool> cancel{false};
    test::BuildOutcome outcome = test::BuildWithWatchdog(builder, request, seconds(300), cancel);
    ASSERT_TRUE(outcome.status.ok()) << outcome.status.message() << "\nlog:\n" << outcome.log;
    CacheStepCounter counter;
    counter.Add(outcome.log);
    counted.push_back(counter.Count());
    if (counted.size() == 2) {
      EXPECT_NE(outcome.log.find(" CACHED\n"), std::string::npos) << outcome.log;
    }
  }
  EXPECT_EQ(counted[0].hits, 0);
  EXPECT_EQ(counted[0].misses, 2);
  EXPECT_EQ(counted[1].hits, 2);
  EXPECT_EQ(counted[1].misses, 0);
}

TEST_F(DockerBuilderTest, FailingRunStepIsNotRetryableAndNamesThePlatform) {
  DockerBuilder builder(runner_, options_);
  BuildRequest request =
      MakeRequest(kAmd64, "FROM busybox\nRUN echo about-to-fail && exit 3\n", "failing");
  std::atomic<bool> cancel{false};
  test::BuildOutcome outcome = test::BuildWithWatchdog(builder, request, seconds(300), cancel);
  ASSERT_FALSE(outcome.status.ok()) << outcome.log;
  EXPECT_EQ(outcome.status.code(), Status::Code::kInternal) << outcome.status.message();
  EXPECT_FALSE(outcome.status.retryable());
  EXPECT_NE(outcome.status.message().find("docker build for linux/amd64 on the engine at " +
                                          engine_.host() + " exited with status 1"),
            std::string::npos)
      << outcome.status.message();
  EXPECT_NE(outcome.log.find("about-to-fail"), std::string::npos) << outcome.log;
  EXPECT_EQ(outcome.log.find("manifold: skopeo copy"), std::string::npos)
      << "the export ran after a failed build";
  EXPECT_FALSE(fs::exists(fs::path(request.layout_dir) / "index.json"));
}

TEST_F(DockerBuilderTest, CancelStopsTheBuildOnTheEngine) {
  DockerBuilder builder(runner_, options_);
  // "sleeping-42" appears only when the RUN step runs: the step header shows $((6*7)).
  BuildRequest request =
      MakeRequest(kAmd64, "FROM busybox\nRUN echo sleeping-$((6*7)) && sleep 37\n", "cancel");
  test::CanceledBuild canceled =
      test::CancelOnceLogShows(builder, request, "sleeping-42", seconds(120));
  const test::BuildOutcome& outcome = canceled.outcome;
  ASSERT_TRUE(canceled.reached) << "the build never reached its RUN sleep step; log:\n"
                                << outcome.log;
  EXPECT_EQ(outcome.status.code(), Status::Code::kCanceled) << outcome.status.message();
  EXPECT_FALSE(fs::exists(fs::path(request.layout_dir) / "index.json"));
  // The RUN step runs in a container of the engine, not under the client: BuildKit must
  // have stopped it when the client's session ended.
  EXPECT_TRUE(test::WaitFor(
      [] {
        return !test::ProcessRunning({"sleep", "37"});
      },
      seconds(20)))
      << "the RUN step's sleep survived the cancel";
  CommandResult images = Docker({"image", "ls", "--quiet", "manifold-test-cancel"});
  EXPECT_EQ(images.output, "") << "a canceled build left an image";
}

// A hostile Dockerfile on an agent that gives RUN steps the engine's host network (as an
// agent did before the build's network was honoured), built with --network none: a step
// reaching for a service on the host's 127.0.0.1 finds nothing there, and a step looking
// for the engine's processes sees only its own (BuildKit gives each step a PID
// namespace). The next build on the same builder succeeds.
TEST_F(DockerBuilderTest, HostileStepsWithNetworkNoneReachNoHostServiceNorProcess) {
  httplib::Server host_service;
  std::atomic<int> reached{0};
  host_service.Get(".*", [&](const httplib::Request&, httplib::Response& response) {
    ++reached;
    response.set_content("a host-only secret\n", "text/plain");
  });
  const int port = host_service.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread serving([&] { host_service.listen_after_bind(); });
  struct StopServing {
    httplib::Server& server;
    std::thread& thread;
    ~StopServing() {
      server.stop();
      thread.join();
    }
  } stop_serving{host_service, serving};
  // The service answers from the host itself, so a miss below is the sandbox's doing.
  httplib::Client from_host("127.0.0.1", port);
  httplib::Result answered = from_host.Get("/");
  ASSERT_TRUE(answered && answered->status == 200);
  ASSERT_EQ(reached.exchange(0), 1);

  DockerBuilderOptions host_network_agent = options_;
  host_network_agent.network = "host";
  DockerBuilder builder(runner_, host_network_agent);
  // Markers are computed at run time, so BuildKit's step headers (which echo the command)
  // cannot contain them; "dat[a]-root=" matches dockerd's command line but not its own.
  // (No `wget -T`: busybox 1.35's wget crashes with it.)
  const std::string probe = "RUN if wget -q -O - http://127.0.0.1:" + std::to_string(port) +
                            "/; then echo \"probe-$((1+1)): reached the host's loopback\"; "
                            "else echo \"probe-$((2+2)): no host service\"; fi\n";
  const std::string processes =
      "RUN echo \"engine processes seen: $(cat /proc/[0-9]*/cmdline | tr '\\0' ' ' | "
      "grep -o 'dat[a]-root=' | wc -l)\"; echo \"processes seen: $(ls -d /proc/[0-9]* | wc -l)\"\n";
  BuildRequest request = MakeRequest(kAmd64, "FROM busybox\n" + probe + processes, "hostile");
  request.network = "none";
  std::atomic<bool> cancel{false};
  test::BuildOutcome outcome = test::BuildWithWatchdog(builder, request, seconds(300), cancel);
  ASSERT_TRUE(outcome.status.ok()) << outcome.status.message() << "\nlog:\n" << outcome.log;
  EXPECT_NE(outcome.log.find(" build --progress=plain --platform linux/amd64 -f " +
                             request.dockerfile_path + " --network=none "),
            std::string::npos)
      << outcome.log;
  EXPECT_NE(outcome.log.find("probe-4: no host service"), std::string::npos) << outcome.log;
  EXPECT_EQ(outcome.log.find("probe-2"), std::string::npos) << outcome.log;
  EXPECT_EQ(reached.load(), 0) << "a RUN step reached the service on the host's 127.0.0.1";
  EXPECT_NE(outcome.log.find("engine processes seen: 0\n"), std::string::npos) << outcome.log;

  // The next build on the same agent, asking for no network, gets the agent's host network
  // and builds; the same probe then reaches the service, so it was the build's none that
  // stopped it above, not a probe that cannot work.
  BuildRequest next = MakeRequest(kAmd64, "FROM busybox\n" + probe, "next");
  next.no_cache = true;  // the probe must run, not come from the cache
  test::BuildOutcome after = test::BuildWithWatchdog(builder, next, seconds(300), cancel);
  ASSERT_TRUE(after.status.ok()) << after.status.message() << "\nlog:\n" << after.log;
  EXPECT_NE(after.log.find(" --network=host "), std::string::npos) << after.log;
  EXPECT_NE(after.log.find("probe-2: reached the host's loopback"), std::string::npos) << after.log;
  EXPECT_EQ(reached.load(), 1);
  EXPECT_TRUE(fs::exists(fs::path(next.layout_dir) / "index.json"));
}

// The agent's start-up check, through the real manifold-agent binary: a backend that
// cannot build makes it exit non-zero with one line saying what to fix, before it ever
// connects to a coordinator.
class AgentBackendCheckTest : public ::testing::Test {
 protected:
  // Runs the agent against a coordinator endpoint nobody serves; `args` come last.
  CommandResult RunAgent(const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env = {}) {
    std::vector<std::string> argv = {test::BinaryDir() + "/agent/manifold-agent",
                                     "--coordinator",
                                     "tcp://127.0.0.1:" + std::to_string(test::FreeTcpPort()),
                                     "--work-dir",
                                     dir_.path() + "/work",
                                     "--metrics-listen",
                                     "127.0.0.1:0"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, seconds(60), env);
  }

  // The agent refused with exactly one line of output, and that line holds each of `parts`.
  void ExpectRefusal(const CommandResult& agent, const std::vector<std::string>& parts) {
    EXPECT_EQ(agent.exit_code, 1) << agent.output;
    std::string trimmed = agent.output;
    while (!trimmed.empty() && trimmed.back() == '\n') trimmed.pop_back();
    EXPECT_EQ(trimmed.find('\n'), std::string::npos) << "more than one line:\n" << agent.output;
    for (const std::string& part : parts) {
      EXPECT_NE(agent.output.find(part), std::string::npos) << "missing '" << part << "' in:\n"
                                                            << agent.output;
    }
  }

  test::TempDir dir_{"manifold-agent-backend"};
  SubprocessRunner runner_;
};

TEST_F(AgentBackendCheckTest, RefusesAMissingDockerClient) {
  const std::string missing = dir_.path() + "/no-docker-here/docker";
  CommandResult agent = RunAgent({"--backend", "docker", "--docker", missing});
  ExpectRefusal(agent, {"the docker backend cannot build on this host", "cannot run '" + missing,
                        "install the Docker engine's client (Debian: docker.io)"});
}

TEST_F(AgentBackendCheckTest, RefusesAnEngineThatDoesNotAnswer) {
  const std::string host = "unix://" + dir_.path() + "/no-engine.sock";
  CommandResult agent = RunAgent({"--backend", "docker", "--docker-host", host});
  ExpectRefusal(agent, {"the docker backend cannot build on this host",
                        "the Docker engine at " + host + " does not answer",
                        "start dockerd or point --docker-host at its socket"});
}

TEST_F(AgentBackendCheckTest, RefusesADockerClientWithoutBuildx) {
  // A real client of Docker 23 or later without the buildx plugin, if this host has one
  // anywhere in PATH (the trap the issue warns about).
  std::string without_buildx;
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "";
  for (size_t start = 0; start < dirs.size() && without_buildx.empty();) {
    size_t end = std::min(dirs.find(':', start), dirs.size());
    std::string candidate = dirs.substr(start, end - start) + "/docker";
    Status client = access(candidate.c_str(), X_OK) == 0
                        ? DockerBuilder::CheckClient(runner_, candidate)
                        : Status::Ok();
    if (client.message().find("buildx plugin") != std::string::npos) without_buildx = candidate;
    start = end + 1;
  }
  if (without_buildx.empty()) GTEST_SKIP() << "no docker client without buildx in PATH";
  CommandResult agent = RunAgent({"--backend", "docker", "--docker", without_buildx});
  ExpectRefusal(agent, {"the docker backend cannot build on this host",
                        "the docker client '" + without_buildx + "'",
                        "builds with BuildKit only through the buildx plugin, which it lacks"});
}

TEST_F(AgentBackendCheckTest, RefusesAMissingBuildah) {
  const std::string missing = dir_.path() + "/no-buildah-here/buildah";
  CommandResult agent = RunAgent({"--buildah", missing});
  ExpectRefusal(agent, {"the buildah backend cannot build on this host", "cannot run '" + missing,
                        "install buildah 1.28"});
}

TEST_F(AgentBackendCheckTest, RefusesBuildahWithUnusableStorage) {
  // /proc refuses new directories, so buildah cannot create its storage there.
  const std::string conf = dir_.path() + "/storage.conf";
  WriteFile(conf,
            "[storage]\ndriver = \"vfs\"\nrunroot = \"/proc/manifold-no-run\"\n"
            "graphroot = \"/proc/manifold-no-graph\"\n");
  CommandResult agent = RunAgent({"--backend", "buildah"}, {{"CONTAINERS_STORAGE_CONF", conf}});
  ExpectRefusal(agent, {"the buildah backend cannot build on this host",
                        "buildah cannot open its container storage", "/proc/manifold-no-run"});
}

TEST_F(AgentBackendCheckTest, RefusesAStorageConfWithoutADriver) {
  const std::string conf = dir_.path() + "/storage.conf";
  WriteFile(conf, "[storage]\nrunroot = \"" + dir_.path() + "/run\"\ngraphroot = \"" + dir_.path() +
                      "/graph\"\n");
  CommandResult agent = RunAgent({"--backend", "buildah"}, {{"CONTAINERS_STORAGE_CONF", conf}});
  ExpectRefusal(agent, {"the buildah backend cannot build on this host",
                        conf + " (buildah's storage.conf, CONTAINERS_STORAGE_CONF) sets no "
                               "storage driver: add driver = \"overlay\" under [storage]"});
}

TEST_F(AgentBackendCheckTest, StartsWithAWorkingEngineAndFindsAClientThatCanBuild) {
  test::DockerEngine engine;
  Status started = engine.Start();
  ASSERT_TRUE(started.ok()) << started.message();
  // No --docker: the agent looks through PATH for a client that can run BuildKit builds.
  test::Subprocess agent;
  const std::string log = dir_.path() + "/agent.log";
  ASSERT_TRUE(agent
                  .Start({test::BinaryDir() + "/agent/manifold-agent", "--coordinator",
                          "tcp://127.0.0.1:" + std::to_string(test::FreeTcpPort()), "--work-dir",
                          dir_.path() + "/work", "--metrics-listen", "127.0.0.1:0", "--backend",
                          "docker", "--docker-host", engine.host(), "--docker-network", "host"},
                         {}, log)
                  .ok());
  bool ready = test::WaitFor(
      [&] {
        return !agent.Running() ||
               ReadFile(log).find("building with docker (client ") != std::string::npos;
      },
      seconds(60));
  std::string output = ReadFile(log);
  EXPECT_TRUE(ready && agent.Running()) << output;
  // The client it chose is one that can build, whatever comes first in PATH.
  const std::string marker = "building with docker (client ";
  size_t at = output.find(marker);
  ASSERT_NE(at, std::string::npos) << output;
  std::string client = output.substr(at + marker.size());
  client = client.substr(0, client.find(','));
  EXPECT_TRUE(DockerBuilder::CheckClient(runner_, client).ok()) << client;
  EXPECT_NE(output.find(" at " + engine.host() + ", RUN network host, BuildKit sandbox: "),
            std::string::npos)
      << output;
  // What the engine's sandbox lacks is logged, not fatal: the test's engine runs as root
  // without userns-remap, and this agent gives RUN steps the host's network.
  for (const char* warning : {"--docker-network host puts the RUN steps of every build",
                              " runs neither rootless nor with --userns-remap; start dockerd "
                              "with --userns-remap=default"}) {
    EXPECT_NE(output.find(warning), std::string::npos) << output;
  }
  agent.Stop();
}

// Whether a line of a farm build's output comes from `platform`'s job ("[PLATFORM] ...")
// and holds each of `parts`.
bool HasPlatformLine(const std::string& output, const std::string& platform,
                     const std::vector<std::string>& parts) {
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("[" + platform + "] ", 0) != 0) continue;
    bool all = true;
    for (const std::string& part : parts) all = all && line.find(part) != std::string::npos;
    if (all) return true;
  }
  return false;
}

// End to end: a local farm (ops/farm.sh) whose agents build with the docker backend on an
// engine the test starts, the engine's Docker Hub mirror being the farm's own registry.
TEST(DockerFarmTest, BuildsTwoPlatformImageWithTheDockerBackend) {
  const int registry_port = test::FreeTcpPort();
  const std::string registry = "127.0.0.1:" + std::to_string(registry_port);
  test::DockerEngine engine;
  test::DockerEngineOptions engine_options;
  engine_options.registry_mirrors = {"http://" + registry};
  Status started = engine.Start(engine_options);
  ASSERT_TRUE(started.ok()) << started.message();

  test::FarmOptions farm_options;
  farm_options.env = {{"MANIFOLD_FARM_REGISTRY_PORT", std::to_string(registry_port)},
                      {"MANIFOLD_FARM_BACKEND", "docker"},
                      {"MANIFOLD_DOCKER_HOST", engine.host()},
                      {"MANIFOLD_DOCKER_NETWORK", "none"}};
  test::Farm farm(farm_options);
  Status up = farm.Up();
  ASSERT_TRUE(up.ok()) << up.message();
  for (const char* agent : {"amd64-1", "arm64-1"}) {
    EXPECT_NE(farm.Log(agent).find("building with docker (client "), std::string::npos)
        << farm.LogTail(agent);
  }

  const std::string tag = farm.registry() + "/hello-docker:latest";
  CommandResult build =
      farm.Manifold({"build", "--platform", "linux/amd64,linux/arm64", "-t", tag, "--progress",
                     "plain", test::SourceDir() + "/examples/hello"});
  ASSERT_EQ(build.exit_code, 0) << build.output << "\n---- amd64-1 ----\n"
                                << farm.LogTail("amd64-1") << "\n---- dockerd ----\n"
                                << engine.LogTail();
  // BuildKit's output, streamed with each platform's prefix, shows the RUN step on each
  // architecture.
  for (const auto& [platform, machine] :
       std::map<std::string, std::string>{{"linux/amd64", "x86_64"}, {"linux/arm64", "aarch64"}}) {
    EXPECT_TRUE(HasPlatformLine(build.output, platform, {"built on " + machine}))
        << "no '[" << platform << "] ... built on " << machine << "' in:\n"
        << build.output;
  }

  json index = test::RawManifest(tag);
  std::map<std::string, std::string> child_by_arch = test::ChildrenByArch(index);
  ASSERT_EQ(child_by_arch.size(), 2u) << index.dump();
  for (const auto& [arch, digest] : child_by_arch) {
    json config = test::ImageConfig(farm.registry() + "/hello-docker@" + digest);
    EXPECT_EQ(config.value("architecture", ""), arch);
  }

  // The same farm builds the options Dockerfile: stages, --target, --build-arg, a label
  // and an index annotation take effect on both platforms, as with buildah. (Manifest
  // annotations are refused by the docker backend, see docker_builder.h.)
  test::TempDir context("manifold-docker-options");
  WriteFile(fs::path(context.path()) / "Dockerfile", test::kOptionsDockerfile);
  const std::string options_tag = farm.registry() + "/options-docker:latest";
  CommandResult options =
      farm.Manifold({"build", "--platform", "linux/amd64,linux/arm64", "-t", options_tag,
                     "--progress", "plain", "--target", "final", "--build-arg",
                     "GREETING=hello docker options", "--label", "org.example.team=builds",
                     "--annotation", "index:org.example.index=on the index", context.path()});
  ASSERT_EQ(options.exit_code, 0) << options.output << "\n---- amd64-1 ----\n"
                                  << farm.LogTail("amd64-1") << "\n---- arm64-1 ----\n"
                                  << farm.LogTail("arm64-1") << "\n---- dockerd ----\n"
                                  << engine.LogTail();
  // Each agent ran docker build (not buildah) for its platform with the options.
  for (const char* platform : {"linux/amd64", "linux/arm64"}) {
    EXPECT_TRUE(HasPlatformLine(options.output, platform,
                                {std::string(" build --progress=plain --platform ") + platform,
                                 " --build-arg 'GREETING=hello docker options' --target final "}))
        << "no docker build for " << platform << " with the options in:\n"
        << options.output;
  }
  json options_index = test::RawManifest(options_tag);
  ASSERT_TRUE(options_index.is_object()) << options_index.dump();
  EXPECT_EQ(options_index["annotations"].value("org.example.index", ""), "on the index")
      << options_index.dump();
  std::map<std::string, std::string> options_children = test::ChildrenByArch(options_index);
  ASSERT_EQ(options_children.size(), 2u) << options_index.dump();
  ASSERT_TRUE(options_children.count("amd64") && options_children.count("arm64"))
      << options_index.dump();
  for (const auto& [arch, digest] : options_children) {
    test::ExpectOptionsImage(farm.registry() + "/options-docker@" + digest, arch,
                             "hello docker options", {{"org.example.team", "builds"}});
  }
}

// The harness itself: an engine on the vfs driver (the fallback where overlay2 does not
// work) builds, and Stop leaves no process, mount or file of it behind.
TEST(DockerEngineTest, StopLeavesNothingBehind) {
  test::DockerEngine engine;
  test::DockerEngineOptions options;
  options.storage_driver = "vfs";
  Status started = engine.Start(options);
  ASSERT_TRUE(started.ok()) << started.message();
  EXPECT_EQ(engine.storage_driver(), "vfs");
  const fs::path dir = fs::path(engine.socket_path()).parent_path();
  SubprocessRunner runner;
  Result<std::string> client = FindDockerClient(runner, "docker");
  ASSERT_TRUE(client.ok()) << client.status().message();
  // A build with a RUN step gives Stop the engine's mounts and BuildKit's state to clean.
  if (!fs::exists("/bin/busybox")) GTEST_SKIP() << "no static busybox (package busybox-static)";
  test::TempDir context("manifold-docker-context");
  fs::copy_file("/bin/busybox", fs::path(context.path()) / "busybox");
  WriteFile(fs::path(context.path()) / "Dockerfile",
            "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"true\"]\n");
  CommandResult build =
      RunCommand({*client, "build", "--network=none", "-t", "harness-probe", context.path()},
                 seconds(120), {{"DOCKER_HOST", engine.host()}, {"DOCKER_BUILDKIT", "1"}});
  EXPECT_EQ(build.exit_code, 0) << build.output;

  engine.Stop();
  EXPECT_FALSE(engine.Ping());
  EXPECT_FALSE(fs::exists(dir)) << dir << " was not removed";
  EXPECT_EQ(ReadFile("/proc/self/mountinfo").find(dir.string() + "/"), std::string::npos)
      << "a mount under " << dir << " is left";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    std::string cmdline = ReadFile(entry.path() / "cmdline");
    EXPECT_EQ(cmdline.find(dir.string() + "/"), std::string::npos)
        << "process " << entry.path().filename() << " of the engine is left";
  }
}

}  // namespace
}  // namespace manifold
