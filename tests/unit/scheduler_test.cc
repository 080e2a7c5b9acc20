#include "coordinator/scheduler.h"

#include <gtest/gtest.h>

namespace manifold {
namespace {

Platform P(const char* text) { return *ParsePlatform(text); }

SchedulerAgent Agent(const std::string& id, std::vector<PlatformOffer> offers, uint32_t free) {
  return SchedulerAgent{id, std::move(offers), free};
}

TEST(SchedulerTest, EachJobGoesToAnAgentOfItsPlatform) {
  std::vector<PendingJob> pending = {{1, P("linux/amd64")}, {2, P("linux/arm64")}};
  auto assignments = Schedule(pending, {Agent("x86", {{P("linux/amd64"), false}}, 1),
                                        Agent("graviton", {{P("linux/arm64"), false}}, 1)});
  EXPECT_EQ(assignments, (std::vector<Assignment>{{1, "x86", false}, {2, "graviton", false}}));
}

TEST(SchedulerTest, RespectsFreeSlots) {
  std::vector<PendingJob> pending = {
      {1, P("linux/arm64")}, {2, P("linux/arm64")}, {3, P("linux/arm64")}};
  auto assignments = Schedule(pending, {Agent("a", {{P("linux/arm64"), false}}, 2)});
  EXPECT_EQ(assignments, (std::vector<Assignment>{{1, "a", false}, {2, "a", false}}));
  EXPECT_TRUE(Schedule(pending, {Agent("a", {{P("linux/arm64"), false}}, 0)}).empty());
}

TEST(SchedulerTest, NoAgentForPlatformLeavesJobPendingWithoutBlockingOthers) {
  std::vector<PendingJob> pending = {{1, P("linux/s390x")}, {2, P("linux/amd64")}};
  auto assignments = Schedule(pending, {Agent("x86", {{P("linux/amd64"), false}}, 1)});
  EXPECT_EQ(assignments, (std::vector<Assignment>{{2, "x86", false}}));
}

TEST(SchedulerTest, PrefersNativeOverEmulated) {
  std::vector<PendingJob> pending = {{1, P("linux/arm64")}, {2, P("linux/arm64")}};
  auto assignments = Schedule(pending, {Agent("qemu", {{P("linux/arm64"), true}}, 4),
                                        Agent("graviton", {{P("linux/arm64"), false}}, 1)});
  // The native agent takes the first job; the emulated one only what is left.
  EXPECT_EQ(assignments, (std::vector<Assignment>{{1, "graviton", false}, {2, "qemu", true}}));
}

TEST(SchedulerTest, SpreadsLoadThenBreaksTiesById) {
  std::vector<PendingJob> pending = {
      {1, P("linux/amd64")}, {2, P("linux/amd64")}, {3, P("linux/amd64")}};
  auto assignments = Schedule(pending, {Agent("b", {{P("linux/amd64"), false}}, 2),
                                        Agent("a", {{P("linux/amd64"), false}}, 2)});
  EXPECT_EQ(assignments,
            (std::vector<Assignment>{{1, "a", false}, {2, "b", false}, {3, "a", false}}));
}

TEST(SchedulerTest, OldestJobsFirst) {
  std::vector<PendingJob> pending = {{7, P("linux/amd64")}, {9, P("linux/amd64")}};
  auto assignments = Schedule(pending, {Agent("a", {{P("linux/amd64"), false}}, 1)});
  EXPECT_EQ(assignments, (std::vector<Assignment>{{7, "a", false}}));
}

TEST(SchedulerTest, AgentOfSeveralPlatformsCountsItsSlotsOnce) {
  // "multi" serves both platforms with 2 slots; once amd64 jobs took one, it ranks below
  // "arm" (2 free) for the arm64 job, and after its last slot it takes nothing more.
  std::vector<PendingJob> pending = {{1, P("linux/amd64")},
                                     {2, P("linux/arm64")},
                                     {3, P("linux/amd64")},
                                     {4, P("linux/arm64")},
                                     {5, P("linux/amd64")}};
  auto assignments =
      Schedule(pending, {Agent("multi", {{P("linux/amd64"), false}, {P("linux/arm64"), false}}, 2),
                         Agent("arm", {{P("linux/arm64"), false}}, 2)});
  EXPECT_EQ(assignments,
            (std::vector<Assignment>{
                {1, "multi", false}, {2, "arm", false}, {3, "multi", false}, {4, "arm", false}}));
}

TEST(SchedulerTest, DeepQueueWithOneFreeSlotPlacesTheOldestJobOfItsPlatform) {
  std::vector<PendingJob> pending;
  for (uint64_t id = 1; id <= 100000; ++id) {
    pending.push_back({id, P(id % 3 == 0 ? "linux/amd64" : "linux/arm64")});
  }
  auto assignments = Schedule(pending, {Agent("x86", {{P("linux/amd64"), false}}, 1),
                                        Agent("busy", {{P("linux/arm64"), false}}, 0)});
  EXPECT_EQ(assignments, (std::vector<Assignment>{{3, "x86", false}}));
}

TEST(SchedulerTest, NothingPendingOrNoAgents) {
  EXPECT_TRUE(Schedule({}, {Agent("a", {{P("linux/amd64"), false}}, 1)}).empty());
  EXPECT_TRUE(Schedule({{1, P("linux/amd64")}}, {}).empty());
}

}  // namespace
}  // namespace manifold
