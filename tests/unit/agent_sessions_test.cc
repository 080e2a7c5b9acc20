#include "coordinator/agent_sessions.h"

#include <gtest/gtest.h>

namespace manifold {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const LoopClock::time_point kStart{std::chrono::hours(1)};

HelloMsg Hello(const std::string& id, uint32_t slots = 2) {
  HelloMsg hello;
  hello.agent_id = id;
  hello.hostname = id + ".example";
  hello.version = "1.0";
  hello.platforms = {{ParsePlatform("linux/arm64").value(), false}};
  hello.slots = slots;
  return hello;
}

TEST(AgentSessionsTest, AnAgentSilentForTheWindowIsLostAndOthersAreNot) {
  AgentSessions sessions;
  sessions.Open(Hello("a1"), "r1", "", kStart);
  AgentSession& a2 = sessions.Open(Hello("a2"), "r2", "", kStart);
  sessions.Seen(a2, kStart + seconds(5));
  EXPECT_TRUE(sessions.Lost(kStart + seconds(6), seconds(6)).empty());
  EXPECT_EQ(sessions.Lost(kStart + seconds(6) + milliseconds(1), seconds(6)),
            std::vector<std::string>{"a1"});
}

TEST(AgentSessionsTest, AnAwaitedAgentIsLostOnceUnlessItSaysHello) {
  AgentSessions sessions;
  sessions.Await("gone", kStart + seconds(10));
  sessions.Await("back", kStart + seconds(10));
  sessions.Open(Hello("back"), "r1", "", kStart + seconds(3));
  EXPECT_TRUE(sessions.Lost(kStart + seconds(10), seconds(100)).empty());
  EXPECT_EQ(sessions.Lost(kStart + seconds(11), seconds(100)), std::vector<std::string>{"gone"});
  EXPECT_TRUE(sessions.Lost(kStart + seconds(12), seconds(100)).empty());
}

TEST(AgentSessionsTest, ANewHelloTakesTheRouteOverAndTheOldRouteIsUnknown) {
  AgentSessions sessions;
  sessions.Open(Hello("a1"), "old", "", kStart);
  sessions.Open(Hello("a1"), "new", "", kStart + seconds(1));
  EXPECT_EQ(sessions.FindByRoute("old"), nullptr);
  ASSERT_NE(sessions.FindByRoute("new"), nullptr);
  EXPECT_EQ(sessions.FindByRoute("new")->agent_id, "a1");
  sessions.Close("a1");
  EXPECT_EQ(sessions.FindByRoute("new"), nullptr);
  EXPECT_TRUE(sessions.Snapshot(kStart).empty());
}

TEST(AgentSessionsTest, FramesBeforeHelloAreHeldInOrderBoundedAndForgottenWhenStale) {
  AgentSessions sessions;
  EXPECT_TRUE(sessions.HoldUnintroduced("r1", "one", kStart));
  EXPECT_FALSE(sessions.HoldUnintroduced("r1", "two", kStart));
  EXPECT_EQ(sessions.TakeUnintroduced("r1"), (std::vector<std::string>{"one", "two"}));
  EXPECT_TRUE(sessions.TakeUnintroduced("r1").empty());

  // At most 64 MiB are held per connection.
  std::string big(40u << 20, 'x');
  sessions.HoldUnintroduced("r2", big, kStart);
  sessions.HoldUnintroduced("r2", big, kStart);
  EXPECT_EQ(sessions.TakeUnintroduced("r2").size(), 1u);

  sessions.HoldUnintroduced("r3", "late", kStart);
  sessions.Lost(kStart + seconds(61), seconds(6));  // ten liveness windows later
  EXPECT_TRUE(sessions.TakeUnintroduced("r3").empty());
}

TEST(AgentSessionsTest, TheSnapshotShowsThePublishedStateAndTheLastSeenAge) {
  AgentSessions sessions;
  AgentSession& a1 = sessions.Open(Hello("a1", 4), "r1", "", kStart);
  a1.jobs = {{7, 1}, {8, 2}};
  a1.draining = true;
  // Not published yet: the API still sees the hello's state.
  std::vector<AgentView> views = sessions.Snapshot(kStart + seconds(1));
  ASSERT_EQ(views.size(), 1u);
  EXPECT_EQ(views[0].busy, 0u);
  EXPECT_EQ(views[0].state, "online");
  sessions.Publish("a1");
  sessions.Seen(a1, kStart + seconds(2));
  views = sessions.Snapshot(kStart + seconds(5));
  EXPECT_EQ(views[0].id, "a1");
  EXPECT_EQ(views[0].hostname, "a1.example");
  EXPECT_EQ(views[0].slots, 4u);
  EXPECT_EQ(views[0].busy, 2u);
  EXPECT_EQ(views[0].state, "draining");
  EXPECT_EQ(views[0].last_seen_ms_ago, 3000);
}

}  // namespace
}  // namespace manifold
