// The coordinator process against agents played by the test over a real ZeroMQ socket:
// hostile frames, sessions, agent loss with retry on another agent, and fencing of the
// lost agent's late result. PostgreSQL is real; no registry is needed because no build
// here reaches its merge.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <zmq.hpp>

#include "common/digest.h"
#include "common/http_client.h"
#include "common/registry.h"
#include "common/tar.h"
#include "common/wire.h"
#include "tests/support/fake_agent.h"
#include "tests/support/farm.h"
#include "tests/support/ports.h"
#include "tests/support/postgres_proxy.h"
#include "tests/support/postgres_server.h"
#include "tests/support/push_image.h"
#include "tests/support/registry_proxy.h"
#include "tests/support/registry_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_image.h"
#include "tests/support/wait.h"

namespace manifold::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

Platform P(const char* text) { return *ParsePlatform(text); }

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status pg = postgres_.Start();
    ASSERT_TRUE(pg.ok()) << pg.message();
    api_port_ = FreeTcpPort();
    agent_endpoint_ = "tcp://127.0.0.1:" + std::to_string(FreeTcpPort());
    server_ = "http://127.0.0.1:" + std::to_string(api_port_);
    Status started = coordinator_.Start(
        WithMoreArgs({BinaryDir() + "/coordinator/manifold-coordinator", "--database-url",
                      DatabaseUrl(), "--api-listen", "127.0.0.1:" + std::to_string(api_port_),
                      "--agent-listen", agent_endpoint_, "--state-dir", dir_.path() + "/state",
                      "--heartbeat-interval-ms", std::to_string(heartbeat_interval_ms_),
                      "--missed-heartbeats", "3", "--queue-timeout",
                      std::to_string(queue_timeout_s_), "--metrics-listen",
                      "127.0.0.1:" + std::to_string(metrics_port_), "--emulation-fallback-wait",
                      std::to_string(emulation_fallback_wait_s_)}),
        {}, dir_.path() + "/coordinator.log");
    ASSERT_TRUE(started.ok()) << started.message();
    ASSERT_TRUE(WaitFor([&] { return Get("/readyz").status == 200; }, milliseconds(20000)))
        << coordinator_.LogTail();
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << "---- coordinator log ----\n" << coordinator_.LogTail();
  }

  HttpResponse Request(const std::string& method, const std::string& path,
                       const std::string& body = "",
                       const std::string& content_type = "application/json") {
    HttpRequest request;
    request.method = method;
    request.url = server_ + path;
    request.body = body;
    request.headers = {{"Content-Type", content_type}};
    request.timeout_ms = 10000;
    Result<HttpResponse> response = HttpClient().Send(request);
    return response.ok() ? *response : HttpResponse{};
  }
  HttpResponse Get(const std::string& path) { return Request("GET", path); }

  // Submits a one-platform build of a tiny context; returns its id.
  uint64_t SubmitBuild(const char* platform, json extra = json::object(),
                       const char* tag = "127.0.0.1:1/unused:latest") {
    std::string context;
    EXPECT_TRUE(WriteTarFromDirectory(SourceDir() + "/examples/hello", {}, &context).ok());
    std::string digest = Sha256Digest(context);
    EXPECT_EQ(Request("PUT", "/v1/contexts/" + digest, context, "application/x-tar").status, 201);
    json request = {{"platforms", {platform}},
                    {"tags", {tag}},
                    {"context", digest},
                    {"dockerfile", "FROM busybox\n"}};
    request.update(extra);
    HttpResponse response = Request("POST", "/v1/builds", request.dump());
    EXPECT_EQ(response.status, 201) << response.body;
    return json::parse(response.body, nullptr, false).value("id", uint64_t{0});
  }

  json Build(uint64_t id) { return json::parse(Get("/v1/builds/" + std::to_string(id)).body); }

  // A build of an image already in a registry of its own (so that its merge pushes a real
  // index), assigned to a fake linux/amd64 agent: for tests of what becomes of the job's
  // result. Filled by StartAssignedBuild.
  struct AssignedBuild {
    RegistryServer registry;
    TestImage image;
    std::unique_ptr<FakeAgent> agent;
    uint64_t id = 0;
    JobRef job;

    JobResultMsg Success() const {
      const Descriptor& m = image.manifest;
      return JobResultMsg{
          job, true, {m.media_type, m.digest, static_cast<uint64_t>(m.size)}, "", false};
    }
    // The digest REGISTRY/app:latest has now, "" if none.
    std::string Latest() const {
      Result<FetchedManifest> latest = RegistryClient(registry.host()).GetManifest("app", "latest");
      return latest.ok() ? latest->digest : "";
    }
  };
  void StartAssignedBuild(AssignedBuild& build, const char* text) {
    ASSERT_TRUE(build.registry.Start().ok());
    build.image = MakeTestImage(P("linux/amd64"), text);
    RegistryClient client(build.registry.host());
    ASSERT_TRUE(PushTestImage(client, "app", build.image.manifest.digest, build.image).ok());
    build.agent = std::make_unique<FakeAgent>(context_, agent_endpoint_);
    build.agent->Hello("x86", "linux/amd64");
    const std::string tag = build.registry.host() + "/app:latest";
    build.id = SubmitBuild("linux/amd64", json::object(), tag.c_str());
    std::optional<AssignMsg> assign = build.agent->Receive<AssignMsg>();
    ASSERT_TRUE(assign.has_value());
    build.job = assign->job;
  }

  // Where the coordinator finds PostgreSQL; a derived fixture may put a proxy between.
  virtual std::string DatabaseUrl() { return postgres_.url(); }
  std::vector<std::string> WithMoreArgs(std::vector<std::string> args) const {
    args.insert(args.end(), more_args_.begin(), more_args_.end());
    return args;
  }

  TempDir dir_{"manifold-coordinator"};
  PostgresServer postgres_;
  Subprocess coordinator_;
  int api_port_ = 0;
  int metrics_port_ = FreeTcpPort();
  int emulation_fallback_wait_s_ = 30;  // a derived fixture may shorten it before SetUp
  int heartbeat_interval_ms_ = 200;     // a derived fixture may change it before SetUp
  int queue_timeout_s_ = 2;             // a derived fixture may change it before SetUp
  std::vector<std::string> more_args_;  // for the coordinator, set before SetUp
  std::string agent_endpoint_;
  std::string server_;
  zmq::context_t context_{1};
};

TEST_F(CoordinatorTest, HostileFramesAreDroppedAndTheCoordinatorKeepsServing) {
  FakeAgent attacker(context_, agent_endpoint_);
  attacker.SendRaw("");
  attacker.SendRaw("not a capnp message");
  attacker.SendRaw(std::string(4096, '\xff'));
  std::string valid = EncodeAgentMessage(HeartbeatMsg{{{1, 1}}});
  for (size_t i = 8; i < valid.size(); i += 8) {
    std::string corrupt = valid;
    corrupt[i] = static_cast<char>(corrupt[i] ^ 0x7f);
    attacker.SendRaw(corrupt);
  }
  attacker.SendRaw(valid.substr(0, valid.size() - 8));
  HelloMsg bad_platform;
  bad_platform.agent_id = "evil";
  bad_platform.platforms = {{Platform{"linux", "sparc", ""}, false}};
  attacker.Send(bad_platform);

  // A well-behaved agent on another connection is still welcomed.
  FakeAgent agent(context_, agent_endpoint_);
  agent.Hello("good-1", "linux/amd64");
  ASSERT_TRUE(agent.Receive<WelcomeMsg>().has_value());
  EXPECT_TRUE(coordinator_.Running());
  json agents = json::parse(Get("/v1/agents").body);
  ASSERT_EQ(agents["agents"].size(), 1u) << agents.dump();
  EXPECT_EQ(agents["agents"][0]["id"], "good-1");
  // Its heartbeats (every 100 ms while it waits for a message that never comes) keep its
  // last-seen time in the API fresh, 700 ms after its hello.
  EXPECT_FALSE(agent.Receive<CancelMsg>(milliseconds(700)).has_value());
  agents = json::parse(Get("/v1/agents").body);
  ASSERT_EQ(agents["agents"].size(), 1u) << agents.dump();
  EXPECT_LT(agents["agents"][0]["last_seen_ms_ago"].get<int64_t>(), 400) << agents.dump();
}

TEST_F(CoordinatorTest, UnknownSessionIsAskedToSayHelloAndBadVersionIsRefused) {
  FakeAgent agent(context_, agent_endpoint_);
  agent.Send(HeartbeatMsg{});
  std::optional<RejectMsg> reject = agent.Receive<RejectMsg>();
  ASSERT_TRUE(reject.has_value());
  EXPECT_FALSE(reject->fatal);

  FakeAgent old(context_, agent_endpoint_);
  old.Hello("old-1", "linux/amd64", kProtocolVersion + 7);
  std::optional<RejectMsg> refused = old.Receive<RejectMsg>();
  ASSERT_TRUE(refused.has_value());
  EXPECT_TRUE(refused->fatal);
  EXPECT_NE(refused->reason.find("protocol version"), std::string::npos) << refused->reason;
}

TEST_F(CoordinatorTest, JobOfLostAgentIsRetriedElsewhereAndItsLateResultIgnored) {
  FakeAgent first(context_, agent_endpoint_);
  first.Hello("arm-1", "linux/arm64");
  ASSERT_TRUE(first.Receive<WelcomeMsg>().has_value());
  uint64_t build_id = SubmitBuild("linux/arm64");
  std::optional<AssignMsg> assigned = first.Receive<AssignMsg>();
  ASSERT_TRUE(assigned.has_value());
  EXPECT_EQ(assigned->job.attempt, 1u);
  EXPECT_EQ(assigned->platform, P("linux/arm64"));
  EXPECT_EQ(assigned->repositories, std::vector<std::string>{"127.0.0.1:1/unused"});
  first.Send(JobUpdateMsg{assigned->job, JobPhase::kBuilding});
  first.Send(LogChunkMsg{assigned->job, 1, "STEP 1/1: FROM busybox\n"});

  // arm-1 goes silent; arm-2 connects and, once arm-1 is declared lost, gets attempt 2.
  FakeAgent second(context_, agent_endpoint_);
  second.Hello("arm-2", "linux/arm64");
  ASSERT_TRUE(second.Receive<WelcomeMsg>().has_value());
  std::optional<AssignMsg> retried = second.Receive<AssignMsg>();
  ASSERT_TRUE(retried.has_value()) << Build(build_id).dump();
  EXPECT_EQ(retried->job.job_id, assigned->job.job_id);
  EXPECT_EQ(retried->job.attempt, 2u);

  // arm-1's late success for attempt 1 is acknowledged (so it stops resending) but ignored.
  JobResultMsg late{assigned->job,
                    true,
                    {"application/vnd.oci.image.manifest.v1+json", Sha256Digest("late"), 10},
                    "",
                    false};
  first.Send(HeartbeatMsg{});  // arm-1's session is gone: it is asked to say hello
  first.Hello("arm-1", "linux/arm64");
  ASSERT_TRUE(first.Receive<WelcomeMsg>().has_value());
  first.Send(late);
  ASSERT_TRUE(first.Receive<AckMsg>().has_value());
  json build = Build(build_id);
  EXPECT_EQ(build["jobs"][0]["attempt"], 2);
  EXPECT_EQ(build["jobs"][0]["agent"], "arm-2");
  EXPECT_EQ(build["jobs"][0]["manifest_digest"], "");

  // arm-2 fails for good: the build fails, naming platform, agent and attempts.
  second.Send(JobResultMsg{retried->job, false, {}, "RUN exited with status 3", false});
  ASSERT_TRUE(second.Receive<AckMsg>().has_value());
  build = Build(build_id);
  EXPECT_EQ(build["state"], "failed");
  EXPECT_EQ(build["error"],
            "linux/arm64 failed on agent arm-2 after 2 attempts: RUN exited with status 3");
  // The log of the first attempt is kept.
  json logs = json::parse(Get("/v1/builds/" + std::to_string(build_id) + "/logs").body);
  ASSERT_EQ(logs["chunks"].size(), 1u) << logs.dump();
  EXPECT_EQ(logs["chunks"][0]["attempt"], 1);
  EXPECT_TRUE(logs["done"].get<bool>());
}

// Two builds tagged app:latest finish one after the other while the registry answers the
// first index PUT slowly. Merges run on several threads, but the second build's merge waits
// for the first (same tag), so the tag ends on the second build's index, as it would with
// one merge thread; without that wait the slow first PUT lands last.
TEST_F(CoordinatorTest, BuildsOfOneTagLeaveTheLaterIndexUnderItWhenTheFirstPushIsSlow) {
  RegistryServer registry;
  ASSERT_TRUE(registry.Start().ok());
  RegistryProxy proxy;
  ASSERT_TRUE(proxy.Start(registry.host()).ok());
  RegistryClient client(registry.host());
  const TestImage images[] = {MakeTestImage(P("linux/amd64"), "first"),
                              MakeTestImage(P("linux/amd64"), "second")};
  for (const TestImage& image : images) {
    ASSERT_TRUE(PushTestImage(client, "app", image.manifest.digest, image).ok());
  }
  CannedAnswer slow_put;
  slow_put.method = "PUT";
  slow_put.target_contains = "/v2/app/manifests/latest";
  slow_put.forward = true;
  slow_put.delay = milliseconds(2000);
  proxy.Answer(slow_put);
  const std::string tag = proxy.host() + "/app:latest";

  FakeAgent agent(context_, agent_endpoint_);
  agent.Hello("x86", "linux/amd64");
  uint64_t builds[2];
  for (int i = 0; i < 2; ++i) {
    builds[i] = SubmitBuild("linux/amd64", json::object(), tag.c_str());
    std::optional<AssignMsg> assign = agent.Receive<AssignMsg>();
    ASSERT_TRUE(assign.has_value()) << "build " << i;
    const Descriptor& image = images[i].manifest;
    agent.Send(JobResultMsg{assign->job,
                            true,
                            {image.media_type, image.digest, static_cast<uint64_t>(image.size)},
                            "",
                            false});
    ASSERT_TRUE(agent.Receive<AckMsg>().has_value()) << "build " << i;
    // The first merge reaches its slow PUT before the second build is even submitted.
    if (i == 0) std::this_thread::sleep_for(milliseconds(300));
  }
  for (uint64_t id : builds) {
    ASSERT_TRUE(WaitFor([&] { return Build(id)["state"] == "succeeded"; }, milliseconds(30000)))
        << Build(id).dump();
  }
  const std::string first_index = Build(builds[0])["index_digest"];
  const std::string second_index = Build(builds[1])["index_digest"];
  ASSERT_NE(first_index, second_index);
  Result<FetchedManifest> latest = client.GetManifest("app", "latest");
  ASSERT_TRUE(latest.ok()) << latest.status().message();
  EXPECT_EQ(latest->digest, second_index) << "the first build's index is " << first_index;
  // The second build's PUT went out only after the first one's was answered.
  std::vector<std::chrono::steady_clock::time_point> puts;
  for (const ProxiedRequest& request : proxy.requests()) {
    if (request.method == "PUT" && request.target == "/v2/app/manifests/latest") {
      puts.push_back(request.received);
    }
  }
  ASSERT_EQ(puts.size(), 2u);
  EXPECT_GE(puts[1] - puts[0], milliseconds(2000));
}

TEST_F(CoordinatorTest, CancelStopsTheJobOnItsAgentAndEndsTheBuild) {
  FakeAgent agent(context_, agent_endpoint_);
  agent.Hello("amd-1", "linux/amd64");
  ASSERT_TRUE(agent.Receive<WelcomeMsg>().has_value());
  uint64_t build_id = SubmitBuild("linux/amd64");
  std::optional<AssignMsg> assigned = agent.Receive<AssignMsg>();
  ASSERT_TRUE(assigned.has_value());

  HttpResponse canceled = Request("POST", "/v1/builds/" + std::to_string(build_id) + "/cancel");
  ASSERT_EQ(canceled.status, 200) << canceled.body;
  EXPECT_EQ(json::parse(canceled.body)["state"], "canceled");
  std::optional<CancelMsg> cancel = agent.Receive<CancelMsg>();
  ASSERT_TRUE(cancel.has_value());
  EXPECT_EQ(cancel->job, assigned->job);

  // The agent reports the canceled attempt; it is acknowledged and changes nothing.
  agent.Send(JobResultMsg{assigned->job, false, {}, "canceled", false});
  ASSERT_TRUE(agent.Receive<AckMsg>().has_value());
  json build = Build(build_id);
  EXPECT_EQ(build["state"], "canceled");
  EXPECT_EQ(build["jobs"][0]["state"], "canceled");
  EXPECT_EQ(build["jobs"][0]["events"].back()["state"], "canceled");
  // A build that has ended cannot be canceled again.
  EXPECT_EQ(Request("POST", "/v1/builds/" + std::to_string(build_id) + "/cancel").status, 409);
  EXPECT_EQ(Request("POST", "/v1/builds/999/cancel").status, 404);
}

// What the user asked of the sandbox (manifold build --network/--allow/--job-*) crosses the
// API, the store and the agent link intact; host networking without its entitlement is
// refused at submit, saying what to add.
TEST_F(CoordinatorTest, NetworkEntitlementsAndLimitsReachTheAgentsAssign) {
  FakeAgent agent(context_, agent_endpoint_);
  agent.Hello("amd-1", "linux/amd64");
  ASSERT_TRUE(agent.Receive<WelcomeMsg>().has_value());
  json limits = {{"memory_bytes", 1610612736},
                 {"cpu_millis", 1500},
                 {"pids", 256},
                 {"disk_bytes", 10737418240}};
  uint64_t build_id = SubmitBuild(
      "linux/amd64", {{"network", "host"}, {"entitlements", {"network.host"}}, {"limits", limits}});
  std::optional<AssignMsg> assigned = agent.Receive<AssignMsg>();
  ASSERT_TRUE(assigned.has_value());
  EXPECT_EQ(assigned->network, "host");
  EXPECT_EQ(assigned->entitlements, std::vector<std::string>{"network.host"});
  EXPECT_EQ(assigned->limits, (JobLimits{1610612736, 1500, 256, 10737418240}));
  json build = Build(build_id);
  EXPECT_EQ(build["network"], "host");
  EXPECT_EQ(build["entitlements"], json({"network.host"}));
  EXPECT_EQ(build["limits"], limits);

  // The defaults: the agent's sandbox network and its own limits.
  agent.Send(JobResultMsg{assigned->job, false, {}, "done with this one", false});
  uint64_t plain_id = SubmitBuild("linux/amd64");
  std::optional<AssignMsg> plain = agent.Receive<AssignMsg>();
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->network, "");
  EXPECT_TRUE(plain->entitlements.empty());
  EXPECT_EQ(plain->limits, JobLimits{});
  EXPECT_EQ(Build(plain_id)["network"], "default");

  json host = {{"platforms", {"linux/amd64"}},
               {"tags", {"127.0.0.1:1/unused:latest"}},
               {"context", Sha256Digest("any")},
               {"dockerfile", "FROM busybox\n"},
               {"network", "host"}};
  HttpResponse refused = Request("POST", "/v1/builds", host.dump());
  EXPECT_EQ(refused.status, 400);
  EXPECT_EQ(json::parse(refused.body, nullptr, false).value("error", ""),
            "field \"network\": --network host needs the network.host entitlement: add --allow "
            "network.host to the build (\"entitlements\": [\"network.host\"] in the API); the "
            "agent must also run with --allow-insecure-entitlement network.host");
}

TEST_F(CoordinatorTest, JobTimeoutEndsTheJobAsTimedOut) {
  FakeAgent agent(context_, agent_endpoint_);
  agent.Hello("amd-1", "linux/amd64");
  ASSERT_TRUE(agent.Receive<WelcomeMsg>().has_value());
  uint64_t build_id = SubmitBuild("linux/amd64", {{"job_timeout_seconds", 1}});
  std::optional<AssignMsg> assigned = agent.Receive<AssignMsg>();
  ASSERT_TRUE(assigned.has_value());
  std::optional<CancelMsg> cancel = agent.Receive<CancelMsg>();
  ASSERT_TRUE(cancel.has_value()) << Build(build_id).dump();
  json build = Build(build_id);
  EXPECT_EQ(build["state"], "failed");
  EXPECT_EQ(build["jobs"][0]["state"], "timed_out");
  EXPECT_EQ(build["error"], "linux/amd64 timed out on agent amd-1 after 1 s (attempt 1)");
}

TEST_F(CoordinatorTest, QueueTimeoutFailsABuildWhosePlatformNoAgentServes) {
  FakeAgent agent(context_, agent_endpoint_);
  agent.Hello("amd-1", "linux/amd64");
  ASSERT_TRUE(agent.Receive<WelcomeMsg>().has_value());
  uint64_t build_id = SubmitBuild("linux/s390x");
  ASSERT_TRUE(WaitFor([&] { return Build(build_id)["state"] == "failed"; }, milliseconds(15000)))
      << Build(build_id).dump();
  std::string error = Build(build_id)["error"];
  EXPECT_EQ(error.rfind("linux/s390x: no agent serving this platform", 0), 0u) << error;
}

TEST_F(CoordinatorTest, DrainedAgentGetsNoNewJobs) {
  FakeAgent agent(context_, agent_endpoint_);
  agent.Hello("arm-1", "linux/arm64");
  ASSERT_TRUE(agent.Receive<WelcomeMsg>().has_value());
  EXPECT_EQ(Request("POST", "/v1/agents/nobody/drain").status, 404);
  ASSERT_EQ(Request("POST", "/v1/agents/arm-1/drain").status, 202);
  ASSERT_TRUE(agent.Receive<DrainMsg>().has_value());
  json agents = json::parse(Get("/v1/agents").body);
  EXPECT_EQ(agents["agents"][0]["state"], "draining");
  CommandResult listed = RunCommand({BinaryDir() + "/cli/manifold", "--server", server_, "agents"},
                                    milliseconds(30000));
  EXPECT_EQ(listed.exit_code, 0) << listed.output;
  std::string row = listed.output.substr(listed.output.find("\narm-1 ") + 1);
  row = row.substr(0, row.find('\n'));
  for (const char* cell : {"linux/arm64", "0/1", "draining"}) {
    EXPECT_NE(row.find(cell), std::string::npos) << cell << " missing from: " << listed.output;
  }
  uint64_t build_id = SubmitBuild("linux/arm64");
  EXPECT_FALSE(agent.Receive<AssignMsg>(milliseconds(1500)).has_value());
  EXPECT_EQ(Build(build_id)["jobs"][0]["state"], "pending");
}

TEST_F(CoordinatorTest, MessagesSentBeforeHelloAreReplayedAfterIt) {
  FakeAgent agent(context_, agent_endpoint_);
  agent.Hello("arm-1", "linux/arm64");
  ASSERT_TRUE(agent.Receive<WelcomeMsg>().has_value());
  uint64_t build_id = SubmitBuild("linux/arm64");
  std::optional<AssignMsg> assigned = agent.Receive<AssignMsg>();
  ASSERT_TRUE(assigned.has_value());

  // As after a coordinator restart: a new connection whose first frames are a log chunk
  // and the result, queued before the agent knew it had to say hello again.
  FakeAgent reconnected(context_, agent_endpoint_);
  reconnected.Holds(assigned->job);
  reconnected.Send(LogChunkMsg{assigned->job, 1, "written while the coordinator was away\n"});
  reconnected.Send(JobResultMsg{assigned->job, false, {}, "RUN exited with status 2", false});
  ASSERT_TRUE(reconnected.Receive<RejectMsg>().has_value());
  reconnected.Hello("arm-1", "linux/arm64", kProtocolVersion, {assigned->job});
  ASSERT_TRUE(reconnected.Receive<AckMsg>().has_value());
  json build = Build(build_id);
  EXPECT_EQ(build["state"], "failed") << build.dump();
  json logs = json::parse(Get("/v1/builds/" + std::to_string(build_id) + "/logs").body);
  ASSERT_EQ(logs["chunks"].size(), 1u) << logs.dump();
  EXPECT_EQ(logs["chunks"][0]["data"], "written while the coordinator was away\n");
}

// Ctrl-C during `manifold build` cancels the build; with --detach it only stops following.
TEST_F(CoordinatorTest, InterruptingTheCliCancelsTheBuildUnlessDetached) {
  FakeAgent agent(context_, agent_endpoint_);
  agent.Hello("amd-1", "linux/amd64");
  ASSERT_TRUE(agent.Receive<WelcomeMsg>().has_value());
  for (bool detach : {false, true}) {
    Subprocess cli;
    std::vector<std::string> argv = {BinaryDir() + "/cli/manifold",
                                     "--server",
                                     server_,
                                     "build",
                                     "--platform",
                                     "linux/amd64",
                                     "-t",
                                     "127.0.0.1:1/app:1"};
    if (detach) argv.push_back("--detach");
    argv.push_back(SourceDir() + "/examples/hello");
    std::string log = dir_.path() + "/cli-" + std::to_string(detach) + ".log";
    ASSERT_TRUE(cli.Start(argv, {}, log).ok());
    std::optional<AssignMsg> assigned = agent.Receive<AssignMsg>();
    ASSERT_TRUE(assigned.has_value()) << cli.LogTail();
    uint64_t build_id = 0;
    ASSERT_TRUE(WaitFor(
        [&] {
          json builds = json::parse(Get("/v1/builds?limit=1").body, nullptr, false);
          if (!builds.is_object() || builds["builds"].empty()) return false;
          build_id = builds["builds"][0]["id"];
          return builds["builds"][0]["jobs"][0]["attempt"] == assigned->job.attempt &&
                 builds["builds"][0]["jobs"][0]["id"] == assigned->job.job_id;
        },
        milliseconds(10000)));
    kill(cli.pid(), SIGINT);
    EXPECT_EQ(cli.Wait(milliseconds(10000)), 130) << cli.LogTail();
    if (detach) {
      EXPECT_NE(cli.LogTail().find("stopped following build"), std::string::npos) << cli.LogTail();
      EXPECT_EQ(Build(build_id)["state"], "running");
      // Finish it, so the agent's slot is free for nothing else in this test.
      agent.Send(JobResultMsg{assigned->job, false, {}, "stopped by the test", false});
      ASSERT_TRUE(agent.Receive<AckMsg>().has_value());
    } else {
      EXPECT_NE(cli.LogTail().find("canceled"), std::string::npos) << cli.LogTail();
      std::optional<CancelMsg> cancel = agent.Receive<CancelMsg>();
      ASSERT_TRUE(cancel.has_value());
      EXPECT_EQ(cancel->job, assigned->job);
      EXPECT_EQ(Build(build_id)["state"], "canceled");
      agent.Send(JobResultMsg{assigned->job, false, {}, "canceled", false});
      ASSERT_TRUE(agent.Receive<AckMsg>().has_value());
    }
  }
}

// The series dashboards, alerts and autoscalers read, scraped from the running process.
TEST_F(CoordinatorTest, MetricsDescribeQueueAgentsAndResults) {
  auto scrape = [&] {
    HttpRequest request;
    request.url = "http://127.0.0.1:" + std::to_string(metrics_port_) + "/metrics";
    Result<HttpResponse> response = HttpClient().Send(request);
    return response.ok() ? response->body : std::string();
  };
  // A queued arm64 job with no agent: one agent would clear it.
  uint64_t waiting = SubmitBuild("linux/arm64");
  ASSERT_TRUE(WaitFor(
      [&] {
        return scrape().find("manifold_desired_agents{platform=\"linux/arm64\"} 1") !=
               std::string::npos;
      },
      milliseconds(10000)))
      << scrape();
  EXPECT_NE(scrape().find("manifold_jobs_pending{platform=\"linux/arm64\"} 1"), std::string::npos);

  FakeAgent agent(context_, agent_endpoint_);
  agent.Hello("arm-1", "linux/arm64");
  ASSERT_TRUE(agent.Receive<WelcomeMsg>().has_value());
  std::optional<AssignMsg> assigned = agent.Receive<AssignMsg>();
  ASSERT_TRUE(assigned.has_value());
  EXPECT_EQ(assigned->build_id, waiting);
  agent.Send(JobUpdateMsg{assigned->job, JobPhase::kAccepted});
  agent.Send(JobResultMsg{assigned->job, false, {}, "RUN exited with status 1", false});
  ASSERT_TRUE(agent.Receive<AckMsg>().has_value());
  std::string text;
  ASSERT_TRUE(WaitFor(
      [&] {
        text = scrape();
        return text.find(
                   "manifold_agents{mode=\"native\",platform=\"linux/arm64\",state=\"online\"} "
                   "1") != std::string::npos;
      },
      milliseconds(10000)))
      << text;
  for (const char* series : {
           "manifold_jobs_total{platform=\"linux/arm64\",result=\"failed\"} 1",
           "manifold_builds_total{result=\"failed\"} 1",
           "manifold_queue_wait_seconds_count{platform=\"linux/arm64\"} 1",
           "manifold_dispatch_latency_seconds_count{platform=\"linux/arm64\"} 1",
           "manifold_job_duration_seconds_count{platform=\"linux/arm64\",result=\"failed\"} 1",
           "manifold_jobs_running{platform=\"linux/arm64\"} 0",
           "manifold_agent_slots{platform=\"linux/arm64\",state=\"idle\"} 1",
           "manifold_desired_agents{platform=\"linux/arm64\"} 0",
           "# HELP manifold_agents_lost_total",
       }) {
    EXPECT_NE(text.find(series), std::string::npos) << series << "\n" << text;
  }
}

TEST_F(CoordinatorTest, ApiRejectsBadRequestsNamingTheField) {
  auto error_of = [&](const json& body) {
    HttpResponse response = Request("POST", "/v1/builds", body.dump());
    EXPECT_EQ(response.status, 400) << response.body;
    return json::parse(response.body, nullptr, false).value("error", "");
  };
  std::string context = Sha256Digest("nothing");
  json ok = {{"platforms", {"linux/amd64"}},
             {"tags", {"127.0.0.1:5000/app:1"}},
             {"context", context},
             {"dockerfile", "FROM busybox\n"}};
  json bad = ok;
  bad["platforms"] = {"linux/sparc"};
  EXPECT_NE(error_of(bad).find("platforms"), std::string::npos);
  bad = ok;
  bad["tags"] = {"127.0.0.1:5000/App:1"};
  EXPECT_NE(error_of(bad).find("tags"), std::string::npos);
  bad = ok;
  bad.erase("dockerfile");
  EXPECT_NE(error_of(bad).find("dockerfile"), std::string::npos);
  EXPECT_NE(error_of(ok).find("upload it first"), std::string::npos);  // unknown context
  bad = ok;
  bad["build_args"] = {{"1BAD", "x"}};
  EXPECT_NE(error_of(bad).find("build_args"), std::string::npos);
  bad = ok;
  bad["labels"] = {{"has space", "x"}};
  EXPECT_EQ(
      error_of(bad),
      "field \"labels\": the key \"has space\" must be letters, digits, '.', '-', '_' and "
      "'/', starting and ending with a letter or digit (e.g. org.opencontainers.image.source)");
  bad = ok;
  bad["manifest_annotations"] = {{"k", 1}};
  EXPECT_EQ(error_of(bad), "field \"manifest_annotations\": the value of \"k\" must be a string");
  bad = ok;
  bad["index_annotations"] = json::array();
  EXPECT_EQ(error_of(bad), "field \"index_annotations\" must be an object of strings");
  bad = ok;
  bad["no_cache"] = "yes";
  EXPECT_EQ(error_of(bad), "field \"no_cache\" must be true or false");
  bad = ok;
  bad["revision"] = 42;
  EXPECT_EQ(error_of(bad), "field \"revision\" must be a string");
  EXPECT_EQ(Request("POST", "/v1/builds", "{not json").status, 400);
  EXPECT_EQ(Request("PUT", "/v1/contexts/" + context, "other bytes").status, 400);
  EXPECT_EQ(Get("/v1/builds/12345").status, 404);
  EXPECT_TRUE(coordinator_.Running());
}

// ---- placement: emulation policy and cache affinity ----

TEST_F(CoordinatorTest, EmulationNeverKeepsTheJobFromEmulatedAgentsAndFailsOnTheQueueTimeout) {
  FakeAgent qemu(context_, agent_endpoint_);
  qemu.HelloEmulated("qemu-1", "linux/arm64");
  ASSERT_TRUE(qemu.Receive<WelcomeMsg>().has_value());
  uint64_t build_id = SubmitBuild("linux/arm64", {{"emulation", "never"}});
  EXPECT_EQ(Build(build_id)["emulation"], "never");
  // Why it waits is its placement from the start, and stays after the job fails of it.
  // The agent heartbeats meanwhile, or it would be lost.
  EXPECT_TRUE(WaitFor(
      [&] {
        qemu.Heartbeat();
        return Build(build_id)["jobs"][0]["placement"] ==
               "no connected agent serves linux/arm64 natively, and the build's --emulation "
               "never keeps it from the agents that emulate it; the job fails if no native one "
               "connects within 2 s (--queue-timeout): start one, or build with --emulation "
               "fallback";
      },
      milliseconds(10000)))
      << Build(build_id).dump();

  // The queue timeout is 2 s: well past it, the emulated agent still got nothing.
  EXPECT_FALSE(qemu.Receive<AssignMsg>(milliseconds(4000)).has_value());
  ASSERT_TRUE(WaitFor([&] { return Build(build_id)["state"] == "failed"; }, milliseconds(10000)))
      << Build(build_id).dump();
  std::string error = Build(build_id)["error"];
  EXPECT_NE(error.find("no native agent"), std::string::npos) << error;
  EXPECT_NE(error.find("--emulation never"), std::string::npos) << error;
}

TEST_F(CoordinatorTest, EmulationAllowTakesAnEmulatedAgentAtOnce) {
  FakeAgent qemu(context_, agent_endpoint_);
  qemu.HelloEmulated("qemu-1", "linux/arm64");
  ASSERT_TRUE(qemu.Receive<WelcomeMsg>().has_value());
  uint64_t build_id = SubmitBuild("linux/arm64", {{"emulation", "allow"}});
  // Far less than the 30 s fallback wait.
  ASSERT_TRUE(qemu.Receive<AssignMsg>(milliseconds(10000)).has_value());
  json job = Build(build_id)["jobs"][0];
  EXPECT_TRUE(job["emulated"].get<bool>());
  EXPECT_EQ(job["placement"], "emulated (--emulation allow)");
}

TEST_F(CoordinatorTest, NativeAgentArrivingWhileAFallbackJobWaitsWins) {
  FakeAgent qemu(context_, agent_endpoint_);
  qemu.HelloEmulated("qemu-1", "linux/arm64");
  ASSERT_TRUE(qemu.Receive<WelcomeMsg>().has_value());
  uint64_t build_id = SubmitBuild("linux/arm64");  // --emulation fallback, the default
  EXPECT_EQ(Build(build_id)["emulation"], "fallback");
  EXPECT_FALSE(qemu.Receive<AssignMsg>(milliseconds(1000)).has_value());

  FakeAgent graviton(context_, agent_endpoint_);
  graviton.Hello("graviton-1", "linux/arm64");
  ASSERT_TRUE(graviton.Receive<WelcomeMsg>().has_value());
  ASSERT_TRUE(graviton.Receive<AssignMsg>().has_value());
  json job = Build(build_id)["jobs"][0];
  EXPECT_EQ(job["agent"], "graviton-1");
  EXPECT_FALSE(job["emulated"].get<bool>());
  EXPECT_EQ(job["placement"], "native, least loaded");
}

TEST_F(CoordinatorTest, JobGoesToTheAgentWhoseCacheIsWarmForItsRepository) {
  FakeAgent a(context_, agent_endpoint_), b(context_, agent_endpoint_);
  a.Hello("amd-a", "linux/amd64");
  b.Hello("amd-b", "linux/amd64");
  ASSERT_TRUE(a.Receive<WelcomeMsg>().has_value());
  ASSERT_TRUE(b.Receive<WelcomeMsg>().has_value());

  // Both idle: the first build goes to amd-a (ties break by id), the second to amd-b.
  SubmitBuild("linux/amd64", json::object(), "127.0.0.1:1/first:latest");
  std::optional<AssignMsg> first = a.Receive<AssignMsg>();
  ASSERT_TRUE(first.has_value());
  uint64_t second_id = SubmitBuild("linux/amd64", json::object(), "127.0.0.1:1/second:latest");
  std::optional<AssignMsg> second = b.Receive<AssignMsg>();
  ASSERT_TRUE(second.has_value());
  a.Succeed(first->job);
  b.Succeed(second->job);
  ASSERT_TRUE(a.Receive<AckMsg>().has_value());
  ASSERT_TRUE(b.Receive<AckMsg>().has_value());
  EXPECT_EQ(Build(second_id)["jobs"][0]["placement"], "native, least loaded");

  // A rebuild of "second" goes to amd-b, whose cache is warm for it, though amd-a sorts first.
  uint64_t rebuild_id = SubmitBuild("linux/amd64", json::object(), "127.0.0.1:1/second:v2");
  ASSERT_TRUE(b.Receive<AssignMsg>().has_value()) << Build(rebuild_id).dump();
  json job = Build(rebuild_id)["jobs"][0];
  EXPECT_EQ(job["agent"], "amd-b");
  EXPECT_EQ(job["placement"], "native, warm cache for 127.0.0.1:1/second");
}

TEST_F(CoordinatorTest, AnUnknownEmulationPolicyIsRefusedWithTheField) {
  std::string context;
  ASSERT_TRUE(WriteTarFromDirectory(SourceDir() + "/examples/hello", {}, &context).ok());
  std::string digest = Sha256Digest(context);
  ASSERT_EQ(Request("PUT", "/v1/contexts/" + digest, context, "application/x-tar").status, 201);
  json request = {{"platforms", {"linux/arm64"}},
                  {"tags", {"127.0.0.1:1/unused:latest"}},
                  {"context", digest},
                  {"dockerfile", "FROM busybox\n"},
                  {"emulation", "sometimes"}};
  HttpResponse response = Request("POST", "/v1/builds", request.dump());
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(json::parse(response.body, nullptr, false).value("error", ""),
            "field \"emulation\" must be one of never, fallback, allow, not \"sometimes\"")
      << response.body;
}

class PatientQueueTest : public CoordinatorTest {
 protected:
  PatientQueueTest() { queue_timeout_s_ = 600; }
};

// `manifold build` says at once, and once, that a platform of the build has no agent, what
// the agents serve and how long the job waits; then that an agent took it.
TEST_F(PatientQueueTest, TheCliSaysOnceThatNoConnectedAgentServesAPlatform) {
  FakeAgent amd(context_, agent_endpoint_);
  amd.Hello("amd-1", "linux/amd64");
  ASSERT_TRUE(amd.Receive<WelcomeMsg>().has_value());
  Subprocess cli;
  ASSERT_TRUE(cli.Start({BinaryDir() + "/cli/manifold", "--server", server_, "build", "--platform",
                         "linux/amd64,linux/arm/v7", "--progress", "plain", "-t",
                         "127.0.0.1:1/app:1", SourceDir() + "/examples/hello"},
                        {}, dir_.path() + "/cli.log")
                  .ok());
  const std::string why =
      "[linux/arm/v7] waiting for an agent: no connected agent serves linux/arm/v7 (agents "
      "serve linux/amd64); the job fails if none connects within 600 s (--queue-timeout)\n";
  // The fake agents heartbeat while the test waits, or they would be lost.
  std::vector<FakeAgent*> agents = {&amd};
  auto cli_says = [&](const std::string& text) {
    return WaitFor(
        [&] {
          for (FakeAgent* agent : agents) agent->Heartbeat();
          return cli.LogTail(1 << 16).find(text) != std::string::npos;
        },
        milliseconds(30000));
  };
  ASSERT_TRUE(cli_says(why)) << cli.LogTail();

  FakeAgent arm(context_, agent_endpoint_);
  arm.Hello("arm-1", "linux/arm/v7");
  ASSERT_TRUE(arm.Receive<AssignMsg>().has_value());
  agents.push_back(&arm);
  EXPECT_TRUE(cli_says("[linux/arm/v7] job assigned to agent arm-1\n")) << cli.LogTail();
  kill(cli.pid(), SIGINT);
  EXPECT_EQ(cli.Wait(milliseconds(10000)), 130) << cli.LogTail();
  const std::string output = cli.LogTail(1 << 16);
  EXPECT_EQ(output.find(why), output.rfind(why)) << output;
}

class ShortFallbackTest : public CoordinatorTest {
 protected:
  ShortFallbackTest() { emulation_fallback_wait_s_ = 1; }
};

TEST_F(ShortFallbackTest, FallbackGivesTheJobToAnEmulatedAgentAfterTheWait) {
  FakeAgent qemu(context_, agent_endpoint_);
  qemu.HelloEmulated("qemu-1", "linux/arm64");
  ASSERT_TRUE(qemu.Receive<WelcomeMsg>().has_value());
  uint64_t build_id = SubmitBuild("linux/arm64");
  // Not before the 1 s wait is over, then soon after.
  EXPECT_FALSE(qemu.Receive<AssignMsg>(milliseconds(500)).has_value());
  ASSERT_TRUE(qemu.Receive<AssignMsg>(milliseconds(10000)).has_value());
  json job = Build(build_id)["jobs"][0];
  EXPECT_TRUE(job["emulated"].get<bool>());
  EXPECT_EQ(job["placement"], "emulated (--emulation fallback, no native agent took it in time)");
  EXPECT_EQ(job["events"].back()["detail"], job["placement"]);
}

// The coordinator reaches PostgreSQL through a proxy that can cut a COMMIT and refuse new
// connections, and asks a lost COMMIT's fate for only 300 ms.
class DatabaseOutageTest : public CoordinatorTest {
 protected:
  DatabaseOutageTest() {
    // Heartbeats a loop slowed by the proxy handles late must not make the assignment
    // look lost before the agent has read it.
    heartbeat_interval_ms_ = 1000;
    more_args_ = {"--commit-read-back-ms", "300", "--log-retention", "0"};
  }
  std::string DatabaseUrl() override {
    EXPECT_TRUE(database_.Start(postgres_.port()).ok());
    return "postgresql://postgres@127.0.0.1:" + std::to_string(database_.port()) + "/manifold";
  }
  PostgresProxy database_;
};

// The build's last success commits, but its answer is lost and the database cannot be
// asked for longer than the coordinator waits: the outcome is unknown, and the result
// recorded again finds the build merging already and changes nothing. Once the database
// answers, the loop reads its view back and the build is merged, without a restart.
TEST_F(DatabaseOutageTest, ALastSuccessCommittedUnheardIsMergedOnceTheDatabaseAnswers) {
  AssignedBuild build;
  ASSERT_NO_FATAL_FAILURE(StartAssignedBuild(build, "in doubt"));
  // Only a write's COMMIT (it asks for its transaction id first), not a read's; new
  // connections are refused, so the coordinator cannot ask what became of it.
  database_.RefuseConnections(true);
  database_.CutNextCommit(PostgresProxy::Cut::kAfterCommit, "txid_current_if_assigned");
  build.agent->Send(build.Success());
  ASSERT_TRUE(WaitFor([&] { return database_.commits_cut() == 1; }, milliseconds(10000)));
  std::optional<AckMsg> ack = build.agent->Receive<AckMsg>(milliseconds(1000));  // past 300 ms
  database_.RefuseConnections(false);
  if (!ack) ack = build.agent->Receive<AckMsg>();
  ASSERT_TRUE(ack.has_value());
  ASSERT_TRUE(WaitFor([&] { return Build(build.id)["state"] == "succeeded"; }, milliseconds(30000)))
      << Build(build.id).dump();
  EXPECT_EQ(build.Latest(), Build(build.id)["index_digest"]);
}

// PostgreSQL failover (issue 20): the coordinator's URL names a primary and its streaming
// standby (a libpq multi-host URL with target_session_attrs=read-write). The primary stops
// mid-build and the standby is promoted: the coordinator's new connections find the
// promoted one, the job's result is recorded there and the build completes.
class PostgresFailoverTest : public CoordinatorTest {
 protected:
  PostgresFailoverTest() {
    heartbeat_interval_ms_ = 2000;  // the agent is not declared lost while the test fails over
    more_args_ = {"--log-retention", "0"};
  }
  std::string DatabaseUrl() override {
    Status standby = standby_.StartStandbyOf(postgres_);
    EXPECT_TRUE(standby.ok()) << standby.message();
    return "postgresql://postgres@127.0.0.1:" + std::to_string(postgres_.port()) +
           ",127.0.0.1:" + std::to_string(standby_.port()) +
           "/manifold?target_session_attrs=read-write";
  }
  // The build's state, "" while the API cannot answer.
  std::string State(uint64_t id) {
    json build = json::parse(Get("/v1/builds/" + std::to_string(id)).body, nullptr, false);
    return build.is_object() ? build.value("state", "") : "";
  }
  PostgresServer standby_;
};

TEST_F(PostgresFailoverTest, APromotedStandbyTakesOverMidBuildAndTheBuildCompletes) {
  AssignedBuild build;
  ASSERT_NO_FATAL_FAILURE(StartAssignedBuild(build, "failover"));
  // A fast shutdown streams the primary's last WAL to the standby before it exits.
  postgres_.Stop();
  build.agent->Heartbeat();
  Status promoted = standby_.Promote();
  ASSERT_TRUE(promoted.ok()) << promoted.message();
  build.agent->Send(build.Success());
  std::optional<AckMsg> ack = build.agent->Receive<AckMsg>(milliseconds(60000));
  ASSERT_TRUE(ack.has_value()) << "the result was not recorded on the promoted standby";
  EXPECT_EQ(ack->job, build.job);
  ASSERT_TRUE(WaitFor([&] { return State(build.id) == "succeeded"; }, milliseconds(60000)))
      << Get("/v1/builds/" + std::to_string(build.id)).body;
  EXPECT_EQ(build.Latest(), Build(build.id)["index_digest"]);
}

// Build output bounded by size: each job's stored log keeps its head and tail (the cap is
// small here, 1 MiB), and output waiting for an absent database is capped by bytes.
class LogLimitsTest : public CoordinatorTest {
 protected:
  static constexpr size_t kChunk = 64 << 10;
  static constexpr uint64_t kPendingMax = 8 << 20;
  LogLimitsTest() {
    heartbeat_interval_ms_ = 1000;  // agents flooding a slowed loop still count as alive
    more_args_ = {"--job-log-max-bytes",       "1048576",         "--pending-log-max-bytes",
                  std::to_string(kPendingMax), "--log-retention", "0"};
  }
  // A 64 KiB chunk of lines that begins with `first`.
  static std::string Chunk(const std::string& first) {
    std::string data = first + "\n";
    while (data.size() < kChunk) data += std::string(79, '.') + "\n";
    data.resize(kChunk);
    return data;
  }
  // The coordinator's resident memory, in bytes.
  uint64_t CoordinatorRss() {
    std::ifstream status("/proc/" + std::to_string(coordinator_.pid()) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
    }
    return 0;
  }
  // The whole log of a build as the API gives it, cut markers included.
  std::string Logs(uint64_t id) {
    std::string text;
    int64_t after = 0;
    for (int page = 0; page < 100; ++page) {
      json answer = json::parse(
          Get("/v1/builds/" + std::to_string(id) + "/logs?after=" + std::to_string(after)).body);
      for (const json& chunk : answer["chunks"]) text += chunk["data"].get<std::string>();
      if (answer["chunks"].empty()) break;
      after = answer["next"].get<int64_t>();
    }
    return text;
  }
};

TEST_F(LogLimitsTest, AJobPrintingEightMiBShowsItsHeadTheCutAndItsTailInManifoldLogs) {
  FakeAgent agent(context_, agent_endpoint_);
  agent.Hello("x86", "linux/amd64");
  uint64_t id = SubmitBuild("linux/amd64");
  std::optional<AssignMsg> assign = agent.Receive<AssignMsg>();
  ASSERT_TRUE(assign.has_value());
  for (uint64_t seq = 1; seq <= 128; ++seq) {
    agent.Send(LogChunkMsg{assign->job, seq, Chunk("chunk " + std::to_string(seq) + " begins")});
  }
  agent.Succeed(assign->job);
  ASSERT_TRUE(agent.Receive<AckMsg>().has_value());  // the output is stored before the result

  CommandResult logs = RunCommand({BinaryDir() + "/cli/manifold", "logs", std::to_string(id)},
                                  milliseconds(30000), {{"MANIFOLD_SERVER", server_}});
  ASSERT_EQ(logs.exit_code, 0) << logs.output.substr(0, 2000);
  size_t head = logs.output.find("chunk 1 begins");
  size_t marker = logs.output.find("bytes cut here");
  size_t tail = logs.output.find("chunk 128 begins");
  ASSERT_NE(head, std::string::npos);
  ASSERT_NE(marker, std::string::npos) << "no cut in " << logs.output.size() << " bytes";
  ASSERT_NE(tail, std::string::npos);
  EXPECT_LT(head, marker);
  EXPECT_LT(marker, tail);
  EXPECT_EQ(logs.output.find("chunk 64 begins"), std::string::npos);
  EXPECT_LT(logs.output.size(), size_t{2} << 20);
}

// Agents flood output while the database is stopped: the coordinator tells them to hold
// it, drops what still comes past its cap, and its memory stays far below what was sent;
// once the database is back it tells them to resume, and each job's log keeps its head
// and its tail, saying what was lost and cut.
TEST_F(LogLimitsTest, BackPressureUnderADatabaseOutageKeepsTheCoordinatorsMemoryBounded) {
  constexpr int kAgents = 4;
  constexpr uint64_t kChunksEach = 1280;  // 80 MiB per agent, 320 MiB in all
  std::vector<std::unique_ptr<FakeAgent>> agents;
  for (int i = 0; i < kAgents; ++i) {
    agents.push_back(std::make_unique<FakeAgent>(context_, agent_endpoint_));
    agents.back()->Hello("flood" + std::to_string(i), "linux/amd64");
  }
  for (int i = 0; i < kAgents; ++i) SubmitBuild("linux/amd64");
  std::vector<JobRef> jobs;
  std::vector<uint64_t> builds;  // by agent
  for (auto& agent : agents) {
    std::optional<AssignMsg> assign = agent->Receive<AssignMsg>();
    ASSERT_TRUE(assign.has_value());
    jobs.push_back(assign->job);
    builds.push_back(assign->build_id);
  }
  for (size_t i = 0; i < jobs.size(); ++i) {
    agents[i]->Send(
        LogChunkMsg{jobs[i], 1, Chunk("head of job " + std::to_string(jobs[i].job_id))});
  }
  ASSERT_TRUE(WaitFor([&] { return Logs(builds[0]).find("head of job") != std::string::npos; },
                      milliseconds(10000)));
  const uint64_t rss_before = CoordinatorRss();
  postgres_.Stop();
  uint64_t rss_max = rss_before;
  const std::string filler = Chunk("middle");
  for (uint64_t seq = 2; seq <= kChunksEach; ++seq) {
    for (int i = 0; i < kAgents; ++i) agents[i]->Send(LogChunkMsg{jobs[i], seq, filler});
    if (seq % 64 == 0) {
      for (auto& agent : agents) agent->Heartbeat();
      rss_max = std::max(rss_max, CoordinatorRss());
    }
  }
  for (auto& agent : agents) {
    std::optional<LogFlowMsg> hold = agent->Receive<LogFlowMsg>(milliseconds(10000));
    ASSERT_TRUE(hold.has_value());
    EXPECT_TRUE(hold->hold);
    rss_max = std::max(rss_max, CoordinatorRss());
  }
  // 320 MiB sent; the backlog's cap is 8 MiB.
  EXPECT_LT(rss_max - rss_before, uint64_t{64} << 20) << "RSS " << rss_before << " -> " << rss_max;

  ASSERT_TRUE(postgres_.Restart().ok());
  for (size_t i = 0; i < agents.size(); ++i) {
    std::optional<LogFlowMsg> resume = agents[i]->Receive<LogFlowMsg>(milliseconds(30000));
    ASSERT_TRUE(resume.has_value()) << coordinator_.LogTail();
    EXPECT_FALSE(resume->hold);
    agents[i]->Send(LogChunkMsg{jobs[i], kChunksEach + 1, Chunk("tail of the job")});
    agents[i]->Succeed(jobs[i]);
    ASSERT_TRUE(agents[i]->Receive<AckMsg>().has_value());
  }
  std::string log = Logs(builds[0]);
  size_t head = log.find("head of job");
  size_t cut = log.find("bytes cut here");
  size_t lost = log.find("bytes of output lost here");
  size_t tail = log.find("tail of the job");
  ASSERT_NE(head, std::string::npos);
  ASSERT_NE(cut, std::string::npos);
  ASSERT_NE(lost, std::string::npos);
  ASSERT_NE(tail, std::string::npos);
  EXPECT_LT(head, cut);
  EXPECT_LT(cut, lost);
  EXPECT_LT(lost, tail);
  EXPECT_LT(log.size(), size_t{2} << 20);
  HttpRequest scrape;
  scrape.url = "http://127.0.0.1:" + std::to_string(metrics_port_) + "/metrics";
  Result<HttpResponse> metrics = HttpClient().Send(scrape);
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(metrics->body.find("manifold_log_holds_total 0"), std::string::npos);
  EXPECT_EQ(metrics->body.find("manifold_log_bytes_total{outcome=\"dropped\"} 0"),
            std::string::npos);
}
}  // namespace
}  // namespace manifold::test
