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
  std::vector<PendingJob> pending = {{1, P("linux/arm64"), EmulationPolicy::kAllow},
                                     {2, P("linux/arm64"), EmulationPolicy::kAllow}};
  auto assignments = Schedule(pending, {Agent("qemu", {{P("linux/arm64"), true}}, 4),
                                        Agent("graviton", {{P("linux/arm64"), false}}, 1)});
  // The native agent takes the first job; the emulated one only what is left.
  EXPECT_EQ(assignments, (std::vector<Assignment>{{1, "graviton", false},
                                                  {2, "qemu", true, Placement::kEmulated}}));
}

TEST(SchedulerTest, EmulationPolicyDecidesWhetherAnEmulatedAgentMayTakeTheJob) {
  std::vector<SchedulerAgent> qemu_only = {Agent("qemu", {{P("linux/arm64"), true}}, 1)};
  PendingJob never{1, P("linux/arm64"), EmulationPolicy::kNever, /*native_wait_over=*/true};
  EXPECT_TRUE(Schedule({never}, qemu_only).empty());

  PendingJob fallback{1, P("linux/arm64"), EmulationPolicy::kFallback, false};
  EXPECT_TRUE(Schedule({fallback}, qemu_only).empty()) << "still waiting for a native agent";
  fallback.native_wait_over = true;
  EXPECT_EQ(Schedule({fallback}, qemu_only),
            (std::vector<Assignment>{{1, "qemu", true, Placement::kEmulated}}));

  PendingJob allow{1, P("linux/arm64"), EmulationPolicy::kAllow, false};
  EXPECT_EQ(Schedule({allow}, qemu_only),
            (std::vector<Assignment>{{1, "qemu", true, Placement::kEmulated}}));
}

TEST(SchedulerTest, NativeAgentWinsOverEmulatedOnceItArrives) {
  PendingJob fallback{1, P("linux/arm64"), EmulationPolicy::kFallback, true};
  auto assignments = Schedule({fallback}, {Agent("qemu", {{P("linux/arm64"), true}}, 8),
                                           Agent("graviton", {{P("linux/arm64"), false}}, 1)});
  EXPECT_EQ(assignments, (std::vector<Assignment>{{1, "graviton", false}}));
}

TEST(SchedulerTest, WarmCacheWinsOverLeastLoaded) {
  SchedulerAgent warm = Agent("warm", {{P("linux/amd64"), false}}, 1);
  warm.warm.insert({"registry.test/app", P("linux/amd64")});
  SchedulerAgent idle = Agent("idle", {{P("linux/amd64"), false}}, 4);
  PendingJob job{1, P("linux/amd64"), EmulationPolicy::kFallback, false, "registry.test/app"};
  EXPECT_EQ(Schedule({job}, {idle, warm}),
            (std::vector<Assignment>{{1, "warm", false, Placement::kWarmCache}}));

  // Warm for another repository or another platform counts for nothing.
  PendingJob other_repo{1, P("linux/amd64"), EmulationPolicy::kFallback, false, "registry.test/db"};
  EXPECT_EQ(Schedule({other_repo}, {idle, warm}), (std::vector<Assignment>{{1, "idle", false}}));

  // A warm agent without a free slot is passed over: the job does not wait for it.
  warm.free_slots = 0;
  EXPECT_EQ(Schedule({job}, {idle, warm}), (std::vector<Assignment>{{1, "idle", false}}));
}

TEST(SchedulerTest, WarmEmulatedAgentDoesNotBeatNativeOne) {
  SchedulerAgent qemu = Agent("qemu", {{P("linux/arm64"), true}}, 1);
  qemu.warm.insert({"registry.test/app", P("linux/arm64")});
  PendingJob job{1, P("linux/arm64"), EmulationPolicy::kAllow, false, "registry.test/app"};
  EXPECT_EQ(Schedule({job}, {qemu, Agent("graviton", {{P("linux/arm64"), false}}, 1)}),
            (std::vector<Assignment>{{1, "graviton", false}}));
}

TEST(SchedulerTest, AnAgentsSlotIsSharedByAllItsPlatforms) {
  SchedulerAgent both = Agent("both", {{P("linux/amd64"), false}, {P("linux/arm64"), true}}, 1);
  std::vector<PendingJob> pending = {{1, P("linux/amd64")},
                                     {2, P("linux/arm64"), EmulationPolicy::kAllow}};
  EXPECT_EQ(Schedule(pending, {both}), (std::vector<Assignment>{{1, "both", false}}));
}

TEST(SchedulerTest, DescribesThePlacementForTheJobRecord) {
  const char* repo = "registry.test/app";
  EXPECT_EQ(
      DescribePlacement({1, "a", false, Placement::kWarmCache}, EmulationPolicy::kFallback, repo),
      "native, warm cache for registry.test/app");
  EXPECT_EQ(
      DescribePlacement({1, "a", false, Placement::kLeastLoaded}, EmulationPolicy::kFallback, repo),
      "native, least loaded");
  EXPECT_EQ(
      DescribePlacement({1, "a", true, Placement::kEmulated}, EmulationPolicy::kFallback, repo),
      "emulated (--emulation fallback, no native agent took it in time)");
  EXPECT_EQ(DescribePlacement({1, "a", true, Placement::kEmulated}, EmulationPolicy::kAllow, repo),
            "emulated (--emulation allow)");
}

TEST(SchedulerTest, EmulationPolicyNamesRoundTrip) {
  for (const char* name : {"never", "fallback", "allow"}) {
    ASSERT_TRUE(ParseEmulationPolicy(name).has_value()) << name;
    EXPECT_EQ(EmulationPolicyName(*ParseEmulationPolicy(name)), name);
  }
  EXPECT_FALSE(ParseEmulationPolicy("sometimes").has_value());
  EXPECT_FALSE(ParseEmulationPolicy("").has_value());
}

TEST(SchedulerTest, DeepQueueBehindFullAgentsAssignsOnlyWhatFits) {
  std::vector<PendingJob> pending;
  for (uint64_t id = 1; id <= 100000; ++id) pending.push_back({id, P("linux/amd64")});
  auto assignments = Schedule(pending, {Agent("a", {{P("linux/amd64"), false}}, 3)});
  EXPECT_EQ(assignments,
            (std::vector<Assignment>{{1, "a", false}, {2, "a", false}, {3, "a", false}}));
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
