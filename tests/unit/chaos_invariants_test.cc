// The chaos run's checks that need no farm: which faults a build lived through, builds that
// never ended or ended too late, failed builds, the CLI against the database, and the
// figures (time a fault added = duration minus the fault-free builds' median).
#include "bench/chaos_invariants.h"

#include <gtest/gtest.h>

namespace manifold::bench {
namespace {

ChaosBuild Build(int number, const std::string& state, double created, double finished) {
  ChaosBuild build;
  build.number = number;
  build.id = static_cast<uint64_t>(number);
  build.tag = "127.0.0.1:5000/chaos:build-" + std::to_string(number);
  build.state = build.cli_outcome = build.status_state = state;
  build.created = created;
  build.finished = finished;
  if (state == "succeeded") {
    build.index_digest = build.cli_digest = build.status_index = "sha256:" + std::to_string(number);
  }
  return build;
}

InjectedFault Fault(int number, FaultKind kind, double began, double ended) {
  InjectedFault fault;
  fault.number = number;
  fault.fault.kind = kind;
  fault.fault.target = "amd64-1";
  fault.began = began;
  fault.ended = ended;
  return fault;
}

TEST(ChaosInvariantsTest, ABuildLivesThroughTheFaultsThatOverlapItsLife) {
  std::vector<InjectedFault> faults = {Fault(1, FaultKind::kAgentKill, 100, 105),
                                       Fault(2, FaultKind::kCoordinatorKill, 200, 206)};
  EXPECT_EQ(FaultsDuring(Build(1, "succeeded", 90, 99), faults, 1000).size(), 0u);
  EXPECT_EQ(FaultsDuring(Build(2, "succeeded", 104, 150), faults, 1000).size(), 1u);
  // Unfinished: to now.
  EXPECT_EQ(FaultsDuring(Build(3, "running", 104, 0), faults, 1000).size(), 2u);
}

TEST(ChaosInvariantsTest, BuildsThatNeverEndOrEndLateAreViolations) {
  std::vector<InjectedFault> faults = {Fault(1, FaultKind::kAgentPause, 100, 104)};
  std::vector<ChaosBuild> builds = {Build(1, "succeeded", 95, 120), Build(2, "running", 95, 0),
                                    Build(3, "succeeded", 95, 401)};
  InvariantResult result = CheckBuildsEnd(builds, faults, 500);
  ASSERT_EQ(result.violations.size(), 2u);
  EXPECT_NE(result.violations[0].find("build #2 (id 2) never ended"), std::string::npos)
      << result.violations[0];
  EXPECT_NE(result.violations[1].find("ended 301.0 s after its last fault"), std::string::npos)
      << result.violations[1];
}

TEST(ChaosInvariantsTest, AFailedBuildNamesTheFaultBeforeItWhenNoneWasDuringIt) {
  std::vector<InjectedFault> faults = {Fault(1, FaultKind::kAgentPause, 100, 104)};
  ChaosBuild failed = Build(1, "failed", 110, 130);
  failed.error = "no free slot";
  InvariantResult result = CheckNoInfrastructureFailure({failed}, faults, 500);
  ASSERT_EQ(result.violations.size(), 1u);
  EXPECT_NE(result.violations[0].find("the last before it was fault #1 agent-pause amd64-1"),
            std::string::npos)
      << result.violations[0];
  EXPECT_NE(result.violations[0].find("no free slot"), std::string::npos);
}

TEST(ChaosInvariantsTest, TheCliMustReportWhatTheDatabaseHolds) {
  ChaosBuild agrees = Build(1, "succeeded", 0, 10);
  ChaosBuild gave_up = Build(2, "succeeded", 0, 10);
  gave_up.cli_outcome = "manifold: following build 2: the coordinator is unavailable";
  ChaosBuild other_digest = Build(3, "succeeded", 0, 10);
  other_digest.cli_digest = "sha256:other";
  InvariantResult result = CheckCliAgrees({agrees, gave_up, other_digest});
  ASSERT_EQ(result.violations.size(), 2u);
  EXPECT_NE(result.violations[0].find("build #2"), std::string::npos) << result.violations[0];
  EXPECT_NE(result.violations[1].find("printed sha256:other"), std::string::npos)
      << result.violations[1];
}

TEST(ChaosInvariantsTest, FiguresMeasureFaultedBuildsAgainstTheFaultFreeMedian) {
  std::vector<InjectedFault> faults = {Fault(1, FaultKind::kAgentKill, 100, 105),
                                       Fault(2, FaultKind::kPostgresRestart, 300, 304)};
  std::vector<ChaosBuild> builds = {
      Build(1, "succeeded", 0, 10),    Build(2, "succeeded", 20, 32),
      Build(3, "succeeded", 40, 48),    // fault-free: 10, 12, 8 s, median 10
      Build(4, "succeeded", 98, 113),   // agent-kill: +5
      Build(5, "succeeded", 295, 335),  // postgres-restart: +30
      Build(6, "failed", 296, 310)};    // lost, not measured
  ChaosFigures figures = ComputeFigures(builds, faults, 1, 1000);
  EXPECT_EQ(figures.builds_lost, 1);
  EXPECT_EQ(figures.wrong_tags, 1);
  EXPECT_EQ(figures.clean_builds, 3);
  EXPECT_DOUBLE_EQ(figures.clean_median_s, 10);
  EXPECT_EQ(figures.faulted_builds, 2);
  EXPECT_DOUBLE_EQ(figures.added_p50_s, 5);
  EXPECT_DOUBLE_EQ(figures.added_p99_s, 30);
  EXPECT_EQ(figures.bottleneck, "postgres-restart (+30.0 s median over 1 builds)");
}

}  // namespace
}  // namespace manifold::bench
