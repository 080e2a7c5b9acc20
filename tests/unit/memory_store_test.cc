// What the in-memory store offers the loop's tests beyond the rules that
// tests/integration/job_rules_store_test.cc checks: the database going down and coming
// back, and the agents' states.
#include "tests/support/memory_store.h"

#include <gtest/gtest.h>

namespace manifold {
namespace {

TEST(MemoryStoreTest, UnavailableChangesNothingUntilAvailableAgain) {
  test::MemoryStore store;
  BuildSpec spec;
  spec.platforms = {*ParsePlatform("linux/amd64")};
  Result<BuildRecord> build = store.CreateBuild(spec);
  ASSERT_TRUE(build.ok()) << build.status().message();

  HelloMsg hello;
  hello.agent_id = "a1";
  ASSERT_TRUE(store.UpsertAgent(hello).ok());
  EXPECT_EQ(store.AssignJobs({{build->jobs[0].id, "a9", false, ""}}).status().code(),
            Status::Code::kInternal);  // an agent that never said hello

  store.SetAvailable(false);
  Result<std::vector<uint32_t>> refused = store.AssignJobs({{build->jobs[0].id, "a1", false, ""}});
  EXPECT_EQ(refused.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(store.GetBuild(build->id).status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(store.FailBuild(build->id, "x").code(), Status::Code::kUnavailable);

  store.SetAvailable(true);
  Result<std::vector<QueuedJob>> pending = store.PendingJobs();
  ASSERT_TRUE(pending.ok()) << pending.status().message();
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].job_id, build->jobs[0].id);
  EXPECT_EQ(store.GetBuild(build->id)->state, "queued");
}

TEST(MemoryStoreTest, AgentsAreOnlineFromHelloUntilTheirStateChanges) {
  test::MemoryStore store;
  EXPECT_EQ(store.AgentState("a1"), std::nullopt);
  ASSERT_TRUE(store.SetAgentState("a1", "lost").ok());
  EXPECT_EQ(store.AgentState("a1"), std::nullopt);  // never said hello

  HelloMsg hello;
  hello.agent_id = "a1";
  ASSERT_TRUE(store.UpsertAgent(hello).ok());
  EXPECT_EQ(store.AgentState("a1"), "online");
  ASSERT_TRUE(store.SetAgentState("a1", "draining").ok());
  EXPECT_EQ(store.AgentState("a1"), "draining");
}

}  // namespace
}  // namespace manifold
