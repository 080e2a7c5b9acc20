// The chaos run's fault schedule is a function of its seed: the same seed gives the same
// faults, every kind comes up, times fall inside the span in order, and a pause outlasts
// the liveness limit.
#include "bench/chaos_schedule.h"

#include <gtest/gtest.h>

#include <set>

namespace manifold::bench {
namespace {

using std::chrono::milliseconds;

ScheduleOptions Options(uint64_t seed, int faults) {
  ScheduleOptions options;
  options.seed = seed;
  options.faults = faults;
  options.span = milliseconds(120000);
  options.agents = {"amd64-1", "amd64-2", "arm64-1", "arm64-2"};
  options.liveness_limit = milliseconds(1500);
  return options;
}

bool Same(const std::vector<Fault>& a, const std::vector<Fault>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].at != b[i].at || a[i].kind != b[i].kind || a[i].target != b[i].target ||
        a[i].hold != b[i].hold) {
      return false;
    }
  }
  return true;
}

TEST(ChaosScheduleTest, TheSeedAloneDecidesTheFaults) {
  EXPECT_TRUE(Same(ChaosSchedule(Options(42, 20)), ChaosSchedule(Options(42, 20))));
  EXPECT_FALSE(Same(ChaosSchedule(Options(42, 20)), ChaosSchedule(Options(43, 20))));
}

TEST(ChaosScheduleTest, SixFaultsHaveEveryKindAndEachRoundToo) {
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    std::vector<Fault> faults = ChaosSchedule(Options(seed, 12));
    ASSERT_EQ(faults.size(), 12u);
    for (size_t round = 0; round < 2; ++round) {
      std::set<FaultKind> kinds;
      for (size_t i = 0; i < 6; ++i) kinds.insert(faults[round * 6 + i].kind);
      EXPECT_EQ(kinds.size(), 6u) << "seed " << seed << " round " << round;
    }
  }
}

TEST(ChaosScheduleTest, FaultsAreInOrderInsideTheSpanWithTheirTargets) {
  ScheduleOptions options = Options(7, 100);
  std::vector<Fault> faults = ChaosSchedule(options);
  ASSERT_EQ(faults.size(), 100u);
  std::set<std::string> agents(options.agents.begin(), options.agents.end());
  for (size_t i = 0; i < faults.size(); ++i) {
    const Fault& fault = faults[i];
    EXPECT_GE(fault.at.count(), 0);
    EXPECT_LT(fault.at, options.span);
    if (i > 0) {
      EXPECT_LT(faults[i - 1].at, fault.at) << i;
    }
    switch (fault.kind) {
      case FaultKind::kAgentKill:
      case FaultKind::kAgentDrain:
        EXPECT_EQ(agents.count(fault.target), 1u) << fault.target;
        break;
      case FaultKind::kAgentPause:
        EXPECT_EQ(agents.count(fault.target), 1u) << fault.target;
        EXPECT_GT(fault.hold, options.liveness_limit);
        break;
      case FaultKind::kCoordinatorKill:
        EXPECT_EQ(fault.target, "coordinator");
        break;
      case FaultKind::kPostgresRestart:
        EXPECT_EQ(fault.target, "postgres");
        break;
      case FaultKind::kRegistryRestart:
        EXPECT_EQ(fault.target, "registry");
        break;
    }
  }
}

TEST(ChaosScheduleTest, NoFaultsAskedNoFaultsGiven) {
  EXPECT_TRUE(ChaosSchedule(Options(1, 0)).empty());
}

}  // namespace
}  // namespace manifold::bench
