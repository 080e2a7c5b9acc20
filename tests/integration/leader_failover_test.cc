// Two coordinator processes on one PostgreSQL: one leads (holds the lease, runs the agent
// loop and the API), the other waits as a standby; a real agent is given both endpoints.
// Killing the leader mid-build hands the build to the standby; a leader paused past its
// lease is deposed and, resumed, steps down without a write.
#include <gtest/gtest.h>
#include <signal.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "common/digest.h"
#include "common/http_client.h"
#include "common/registry.h"
#include "common/tar.h"
#include "tests/support/coordinator_process.h"
#include "tests/support/farm.h"
#include "tests/support/postgres_server.h"
#include "tests/support/registry_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace manifold::test {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Two coordinators on one database and one real agent (synthetic builds) given both
// agent endpoints, as an operator runs them.
class LeaderFailoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(postgres_.Start().ok());
    ASSERT_TRUE(registry_.Start().ok());
    a_ = Coordinator("coordinator-a");
    b_ = Coordinator("coordinator-b");
    ASSERT_TRUE(a_->Start().ok());
    ASSERT_TRUE(WaitFor([&] { return a_->Leading(); }, milliseconds(20000)))
        << a_->process().LogTail();
    ASSERT_TRUE(b_->Start().ok());
    ASSERT_TRUE(
        WaitFor([&] { return b_->process().LogTail().find("standby:") != std::string::npos; },
                milliseconds(20000)))
        << b_->process().LogTail();
    EXPECT_EQ(a_->Metric("manifold_leader"), "1");
    EXPECT_EQ(b_->Metric("manifold_leader"), "0") << "a standby serves its metrics, not leading";
    EXPECT_EQ(b_->Request("GET", "/readyz").body,
              "ready: standby, the leader is at " + a_->Url() + "\n");
    Status started =
        agent_.Start({BinaryDir() + "/agent/manifold-agent", "--coordinator",
                      a_->agent_endpoint() + "," + b_->agent_endpoint(), "--id", "agent-1",
                      "--platform", "linux/amd64", "--backend", "synthetic", "--synthetic-build-ms",
                      "4000", "--insecure-registry", registry_.host(), "--metrics-listen",
                      "127.0.0.1:0", "--work-dir", dir_.path() + "/agent"},
                     {}, dir_.path() + "/agent.log");
    ASSERT_TRUE(started.ok()) << started.message();
  }
  void TearDown() override {
    if (HasFailure() && a_ && b_) {
      std::cerr << "---- a ----\n"
                << a_->process().LogTail() << "---- b ----\n"
                << b_->process().LogTail() << "---- agent ----\n"
                << agent_.LogTail();
    }
  }
  // Both on one state dir, as README "Highly available" asks.
  std::unique_ptr<CoordinatorProcess> Coordinator(const std::string& name) {
    return std::make_unique<CoordinatorProcess>(
        name, postgres_.url(), dir_.path() + "/state",
        std::vector<std::string>{"--leader-lease-ms", "1500", "--heartbeat-interval-ms", "1000",
                                 "--missed-heartbeats", "5", "--insecure-registry",
                                 registry_.host(), "--log-retention", "0"},
        dir_.path() + "/" + name + ".log");
  }
  // Uploads the context to `c`; a linux/amd64 build request tagged `tag`.
  static json Request(const CoordinatorProcess& c, const std::string& tag) {
    std::string context;
    EXPECT_TRUE(WriteTarFromDirectory(SourceDir() + "/examples/hello", {}, &context).ok());
    const std::string digest = Sha256Digest(context);
    EXPECT_EQ(c.Request("PUT", "/v1/contexts/" + digest, context, "application/x-tar").status, 201);
    return {{"platforms", {"linux/amd64"}},
            {"tags", {tag}},
            {"context", digest},
            {"dockerfile", "FROM busybox\n"}};
  }
  // Submits that build to `c`; its id.
  static uint64_t Submit(const CoordinatorProcess& c, const std::string& tag) {
    HttpResponse response = c.Request("POST", "/v1/builds", Request(c, tag).dump());
    EXPECT_EQ(response.status, 201) << response.body;
    return json::parse(response.body, nullptr, false).value("id", uint64_t{0});
  }
  static json Build(const CoordinatorProcess& c, uint64_t id) {
    return json::parse(c.Request("GET", "/v1/builds/" + std::to_string(id)).body, nullptr, false);
  }
  static std::string State(const CoordinatorProcess& c, uint64_t id) {
    json build = Build(c, id);
    return build.is_object() ? build.value("state", "") : "";
  }
  static bool JobRunning(const CoordinatorProcess& c, uint64_t id) {
    json build = Build(c, id);
    if (!build.is_object()) return false;
    for (const json& job : build.value("jobs", json::array())) {
      if (job.value("state", "") == "building") return true;
    }
    return false;
  }
  // Index pushes this coordinator made, by its metrics: one per tag per merge.
  static std::string IndexPushes(const CoordinatorProcess& c) {
    return c.Metric("manifold_registry_requests_total{operation=\"manifest_put\",status=\"201\"}");
  }

  TempDir dir_{"manifold-failover"};
  PostgresServer postgres_;
  RegistryServer registry_;
  std::unique_ptr<CoordinatorProcess> a_, b_;  // made once PostgreSQL and the registry run
  Subprocess agent_;
};

// Test 1 of issue 20: SIGKILL the leader mid-build; the standby takes over, the agent
// finds it by itself, and the build completes with its index pushed once.
TEST_F(LeaderFailoverTest, KilledLeadersBuildCompletesOnTheStandby) {
  const uint64_t id = Submit(*a_, registry_.host() + "/app:latest");
  ASSERT_TRUE(WaitFor([&] { return JobRunning(*a_, id); }, milliseconds(30000))) << Build(*a_, id);

  ::kill(a_->process().pid(), SIGKILL);
  ASSERT_TRUE(WaitFor([&] { return b_->Leading(); }, milliseconds(30000)))
      << b_->process().LogTail();
  EXPECT_EQ(b_->Metric("manifold_leader_epoch"), "2");
  ASSERT_TRUE(WaitFor([&] { return State(*b_, id) == "succeeded"; }, milliseconds(60000)))
      << Build(*b_, id);
  EXPECT_EQ(Build(*b_, id).value("jobs", json::array()).at(0).value("attempt", 0), 1)
      << "the agent's running attempt was reconciled, not run again";
  RegistryClient client(registry_.host());
  Result<FetchedManifest> latest = client.GetManifest("app", "latest");
  ASSERT_TRUE(latest.ok()) << latest.status().message();
  EXPECT_EQ(latest->digest, Build(*b_, id).value("index_digest", ""));
  EXPECT_EQ(IndexPushes(*b_), "1");
}

// Test 2 of issue 20: a leader paused past its lease is deposed while its build runs on;
// the agent leaves it for the new leader, the build completes there, and the old leader,
// resumed, steps down without a write taking effect.
TEST_F(LeaderFailoverTest, APausedLeaderIsDeposedAndStepsDownWhenResumed) {
  const uint64_t id = Submit(*a_, registry_.host() + "/app:paused");
  ASSERT_TRUE(WaitFor([&] { return JobRunning(*a_, id); }, milliseconds(30000))) << Build(*a_, id);
  ::kill(a_->process().pid(), SIGSTOP);
  ASSERT_TRUE(WaitFor([&] { return b_->Leading(); }, milliseconds(30000)))
      << b_->process().LogTail();
  ASSERT_TRUE(WaitFor([&] { return State(*b_, id) == "succeeded"; }, milliseconds(60000)))
      << Build(*b_, id);
  const std::string index = Build(*b_, id).value("index_digest", "");

  ::kill(a_->process().pid(), SIGCONT);
  EXPECT_EQ(a_->process().Wait(milliseconds(30000)), 3) << "the deposed leader did not step down";
  EXPECT_NE(a_->process().LogTail().find("stepping down"), std::string::npos)
      << a_->process().LogTail();
  EXPECT_EQ(State(*b_, id), "succeeded");
  EXPECT_EQ(Build(*b_, id).value("index_digest", ""), index);
  EXPECT_EQ(IndexPushes(*b_), "1");

  // The new leader takes the next build on the same agent.
  const uint64_t next = Submit(*b_, registry_.host() + "/app:next");
  EXPECT_TRUE(WaitFor([&] { return State(*b_, next) == "succeeded"; }, milliseconds(60000)))
      << Build(*b_, next);
}

// Test 3 of issue 20: the standby's API takes a build, the leader's loop hears of it and
// runs it, and either API serves its status and logs; a cancel through the standby stops
// the job on its agent. What needs the leader's memory is redirected to it.
TEST_F(LeaderFailoverTest, TheStandbysApiTakesBuildsAndServesTheirStatusAndLogs) {
  const uint64_t id = Submit(*b_, registry_.host() + "/app:via-standby");
  ASSERT_TRUE(WaitFor([&] { return State(*a_, id) == "succeeded"; }, milliseconds(30000)))
      << Build(*a_, id);
  EXPECT_EQ(Build(*b_, id), Build(*a_, id));
  for (const CoordinatorProcess* c : {a_.get(), b_.get()}) {
    HttpResponse logs = c->Request("GET", "/v1/builds/" + std::to_string(id) + "/logs");
    EXPECT_EQ(logs.status, 200);
    EXPECT_NE(logs.body.find("synthetic build for linux/amd64"), std::string::npos) << logs.body;
  }

  // A cancel through the standby reaches the agent through the leader.
  const uint64_t canceled = Submit(*b_, registry_.host() + "/app:canceled");
  ASSERT_TRUE(WaitFor([&] { return JobRunning(*a_, canceled); }, milliseconds(30000)))
      << Build(*a_, canceled);
  EXPECT_EQ(b_->Request("POST", "/v1/builds/" + std::to_string(canceled) + "/cancel").status, 200);
  EXPECT_TRUE(WaitFor(
      [&] { return agent_.LogTail().find("canceled by the coordinator") != std::string::npos; },
      milliseconds(10000)))
      << agent_.LogTail();
  EXPECT_EQ(State(*a_, canceled), "canceled");

  // Secrets and the agent list live in the leader's memory: the standby redirects.
  json with_secret = Request(*b_, registry_.host() + "/app:secret");
  with_secret["secrets"] = {{"token", "c2VjcmV0"}};
  HttpResponse redirected = b_->Request("POST", "/v1/builds", with_secret.dump());
  EXPECT_EQ(redirected.status, 307) << redirected.body;
  EXPECT_EQ(redirected.Header("Location"), a_->Url() + "/v1/builds");
  HttpResponse agents = b_->Request("GET", "/v1/agents?platform=linux/amd64");
  EXPECT_EQ(agents.status, 307);
  EXPECT_EQ(agents.Header("Location"), a_->Url() + "/v1/agents?platform=linux/amd64");
  EXPECT_EQ(
      json::parse(a_->Request("GET", "/v1/agents").body, nullptr, false).value("coordinator", ""),
      "coordinator-a")
      << "the agents say which coordinator they are on";
  // The CLI follows the redirect to the leader.
  CommandResult listed =
      RunCommand({BinaryDir() + "/cli/manifold", "agents", "--server", b_->Url()}, seconds(30));
  EXPECT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_NE(listed.output.find("agent-1"), std::string::npos) << listed.output;
  EXPECT_NE(listed.output.find("coordinator-a"), std::string::npos)
      << "which coordinator the agent is on: " << listed.output;
  // Only the leader exports what an autoscaler follows, so any coordinator gives one answer.
  EXPECT_EQ(b_->Metric("manifold_desired_agents{platform=\"linux/amd64\"}"), "");
  EXPECT_NE(a_->Metric("manifold_desired_agents{platform=\"linux/amd64\"}"), "");
}

}  // namespace
}  // namespace manifold::test
