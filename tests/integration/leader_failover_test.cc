// Two coordinator processes on one PostgreSQL: one leads (holds the lease, runs the agent
// loop and the API), the other waits as a standby. Killing the leader mid-build hands the
// build to the standby; a leader paused past its lease is deposed and, resumed, steps down
// without a write.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "common/digest.h"
#include "common/http_client.h"
#include "common/registry.h"
#include "common/tar.h"
#include "tests/support/fake_agent.h"
#include "tests/support/farm.h"
#include "tests/support/ports.h"
#include "tests/support/postgres_server.h"
#include "tests/support/push_image.h"
#include "tests/support/registry_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_image.h"
#include "tests/support/wait.h"

namespace manifold::test {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;

struct CoordinatorProcess {
  std::string name;
  int api_port = FreeTcpPort();
  std::string agent_endpoint = "tcp://127.0.0.1:" + std::to_string(FreeTcpPort());
  Subprocess process;

  std::string Url() const { return "http://127.0.0.1:" + std::to_string(api_port); }
  HttpResponse Request(const std::string& method, const std::string& path,
                       const std::string& body = "",
                       const std::string& type = "application/json") const {
    HttpRequest request;
    request.method = method;
    request.url = Url() + path;
    request.body = body;
    request.headers = {{"Content-Type", type}};
    request.timeout_ms = 5000;
    Result<HttpResponse> response = HttpClient().Send(request);
    return response.ok() ? *response : HttpResponse{};
  }
  bool Ready() const { return Request("GET", "/readyz").status == 200; }
};

class LeaderFailoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(postgres_.Start().ok());
    ASSERT_TRUE(registry_.Start().ok());
    a_.name = "coordinator-a";
    b_.name = "coordinator-b";
    Start(a_);
    ASSERT_TRUE(WaitFor([&] { return a_.Ready(); }, milliseconds(20000))) << a_.process.LogTail();
    Start(b_);
    ASSERT_TRUE(WaitFor([&] { return b_.process.LogTail().find("standby:") != std::string::npos; },
                        milliseconds(20000)))
        << b_.process.LogTail();
  }
  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "---- a ----\n"
                << a_.process.LogTail() << "---- b ----\n"
                << b_.process.LogTail();
    }
  }
  void Start(CoordinatorProcess& c) {
    Status started = c.process.Start({BinaryDir() + "/coordinator/manifold-coordinator",
                                      "--database-url",
                                      postgres_.url(),
                                      "--api-listen",
                                      "127.0.0.1:" + std::to_string(c.api_port),
                                      "--agent-listen",
                                      c.agent_endpoint,
                                      "--state-dir",
                                      dir_.path() + "/" + c.name,
                                      "--leader-name",
                                      c.name,
                                      "--leader-lease-ms",
                                      "1500",
                                      "--heartbeat-interval-ms",
                                      "1000",
                                      "--missed-heartbeats",
                                      "5",
                                      "--metrics-listen",
                                      "127.0.0.1:" + std::to_string(FreeTcpPort()),
                                      "--log-retention",
                                      "0"},
                                     {}, dir_.path() + "/" + c.name + ".log");
    ASSERT_TRUE(started.ok()) << started.message();
  }
  // Uploads the context to `c` and submits a linux/amd64 build tagged `tag`; its id.
  uint64_t Submit(const CoordinatorProcess& c, const std::string& tag) {
    std::string context;
    EXPECT_TRUE(WriteTarFromDirectory(SourceDir() + "/examples/hello", {}, &context).ok());
    const std::string digest = Sha256Digest(context);
    EXPECT_EQ(c.Request("PUT", "/v1/contexts/" + digest, context, "application/x-tar").status, 201);
    json request = {{"platforms", {"linux/amd64"}},
                    {"tags", {tag}},
                    {"context", digest},
                    {"dockerfile", "FROM busybox\n"}};
    HttpResponse response = c.Request("POST", "/v1/builds", request.dump());
    EXPECT_EQ(response.status, 201) << response.body;
    return json::parse(response.body, nullptr, false).value("id", uint64_t{0});
  }
  static std::string State(const CoordinatorProcess& c, uint64_t id) {
    json build =
        json::parse(c.Request("GET", "/v1/builds/" + std::to_string(id)).body, nullptr, false);
    return build.is_object() ? build.value("state", "") : "";
  }
  JobResultMsg Success(const JobRef& job) const {
    const Descriptor& manifest = image_.manifest;
    return JobResultMsg{
        job,
        true,
        {manifest.media_type, manifest.digest, static_cast<uint64_t>(manifest.size)},
        "",
        false};
  }

  TempDir dir_{"manifold-failover"};
  PostgresServer postgres_;
  RegistryServer registry_;
  CoordinatorProcess a_;
  CoordinatorProcess b_;
  zmq::context_t context_{1};
  TestImage image_ = MakeTestImage(*ParsePlatform("linux/amd64"), "failover");
};

TEST_F(LeaderFailoverTest, KilledLeadersBuildCompletesOnTheStandby) {
  RegistryClient client(registry_.host());
  ASSERT_TRUE(PushTestImage(client, "app", image_.manifest.digest, image_).ok());
  EXPECT_FALSE(b_.Ready()) << "a standby does not serve";
  FakeAgent on_a(context_, a_.agent_endpoint);
  on_a.Hello("x86", "linux/amd64");
  const uint64_t id = Submit(a_, registry_.host() + "/app:latest");
  std::optional<AssignMsg> assign = on_a.Receive<AssignMsg>();
  ASSERT_TRUE(assign.has_value());

  ::kill(a_.process.pid(), SIGKILL);
  ASSERT_TRUE(WaitFor([&] { return b_.Ready(); }, milliseconds(30000))) << b_.process.LogTail();
  // The agent finds the new leader (as one given both endpoints does), still holding its job.
  FakeAgent on_b(context_, b_.agent_endpoint);
  on_b.Holds(assign->job);
  on_b.Hello("x86", "linux/amd64", kProtocolVersion, {assign->job});
  on_b.Send(Success(assign->job));
  std::optional<AckMsg> ack = on_b.Receive<AckMsg>(milliseconds(30000));
  ASSERT_TRUE(ack.has_value());
  ASSERT_TRUE(WaitFor([&] { return State(b_, id) == "succeeded"; }, milliseconds(30000)))
      << b_.Request("GET", "/v1/builds/" + std::to_string(id)).body;
  Result<FetchedManifest> latest = client.GetManifest("app", "latest");
  ASSERT_TRUE(latest.ok()) << latest.status().message();
}

TEST_F(LeaderFailoverTest, APausedLeaderIsDeposedAndStepsDownWhenResumed) {
  ::kill(a_.process.pid(), SIGSTOP);
  ASSERT_TRUE(WaitFor([&] { return b_.Ready(); }, milliseconds(30000))) << b_.process.LogTail();
  ::kill(a_.process.pid(), SIGCONT);
  EXPECT_EQ(a_.process.Wait(milliseconds(30000)), 3) << "the deposed leader did not step down";
  EXPECT_NE(a_.process.LogTail().find("stepping down"), std::string::npos) << a_.process.LogTail();
  // The new leader takes builds.
  FakeAgent on_b(context_, b_.agent_endpoint);
  on_b.Hello("x86", "linux/amd64");
  EXPECT_NE(Submit(b_, registry_.host() + "/app:paused"), 0u);
  EXPECT_TRUE(on_b.Receive<AssignMsg>().has_value());
}

}  // namespace
}  // namespace manifold::test
