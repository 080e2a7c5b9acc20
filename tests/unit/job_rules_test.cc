// The job lifecycle rules on their own; tests/integration/job_rules_store_test.cc checks
// that both stores apply them.
#include "coordinator/job_rules.h"

#include <gtest/gtest.h>

namespace manifold {
namespace {

JobRecord HeldJob(uint32_t attempt) {
  JobRecord job;
  job.id = 7;
  job.build_id = 3;
  job.platform = *ParsePlatform("linux/arm64");
  job.state = "building";
  job.attempt = attempt;
  job.agent_id = "a1";
  return job;
}

TEST(JobRulesTest, EveryStateIsPendingHeldOrFinal) {
  for (const char* held : {"assigned", "building", "pushing"}) {
    EXPECT_TRUE(IsHeldJobState(held)) << held;
    EXPECT_FALSE(IsFinalJobState(held)) << held;
  }
  for (const char* final_state : {"succeeded", "failed", "timed_out", "canceled"}) {
    EXPECT_TRUE(IsFinalJobState(final_state)) << final_state;
    EXPECT_FALSE(IsHeldJobState(final_state)) << final_state;
  }
  EXPECT_FALSE(IsHeldJobState("pending"));
  EXPECT_FALSE(IsFinalJobState("pending"));
}

TEST(JobRulesTest, StateListsAsSql) {
  EXPECT_EQ(JobStateSqlList(kHeldJobStates), "('assigned', 'building', 'pushing')");
  EXPECT_EQ(JobStateSqlList(kFinalJobStates), "('succeeded', 'failed', 'timed_out', 'canceled')");
}

TEST(JobRulesTest, OnlyTheHoldingAgentsCurrentAttemptIsCurrent) {
  JobRecord job = HeldJob(2);
  EXPECT_TRUE(IsCurrentAttempt(job, {7, 2}, "a1"));
  EXPECT_FALSE(IsCurrentAttempt(job, {7, 1}, "a1"));  // a retried attempt
  EXPECT_FALSE(IsCurrentAttempt(job, {7, 3}, "a1"));
  EXPECT_FALSE(IsCurrentAttempt(job, {7, 2}, "a2"));  // another agent
  EXPECT_FALSE(IsCurrentAttempt(job, {8, 2}, "a1"));  // another job
  for (const char* state : {"pending", "succeeded", "failed", "timed_out", "canceled"}) {
    job.state = state;
    EXPECT_FALSE(IsCurrentAttempt(job, {7, 2}, "a1")) << state;
  }
}

TEST(JobRulesTest, PhasesMoveToHeldStates) {
  EXPECT_EQ(PhaseJobState(JobPhase::kAccepted), "assigned");
  EXPECT_EQ(PhaseJobState(JobPhase::kBuilding), "building");
  EXPECT_EQ(PhaseJobState(JobPhase::kPushing), "pushing");
}

TEST(JobRulesTest, OnlyRetryableFailuresWithAttemptsLeftAreRetried) {
  EXPECT_EQ(JudgeFailure(HeldJob(1), true, 3), FailureVerdict::kRetry);
  EXPECT_EQ(JudgeFailure(HeldJob(2), true, 3), FailureVerdict::kRetry);
  EXPECT_EQ(JudgeFailure(HeldJob(3), true, 3), FailureVerdict::kFailBuild);
  EXPECT_EQ(JudgeFailure(HeldJob(1), false, 3), FailureVerdict::kFailBuild);
  EXPECT_EQ(JudgeFailure(HeldJob(1), true, 1), FailureVerdict::kFailBuild);
}

TEST(JobRulesTest, BuildFailureMessageNamesPlatformAgentAndAttempts) {
  EXPECT_EQ(BuildFailureMessage(HeldJob(1), "a1", "exit status 2"),
            "linux/arm64 failed on agent a1 after 1 attempt: exit status 2");
  EXPECT_EQ(BuildFailureMessage(HeldJob(3), "a2", "registry 503"),
            "linux/arm64 failed on agent a2 after 3 attempts: registry 503");
}

}  // namespace
}  // namespace manifold
