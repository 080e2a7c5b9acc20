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

JobResultMsg Failure(bool retryable, bool refused) {
  return JobResultMsg{{7, 1}, false, {}, "error", retryable, refused};
}

TEST(JobRulesTest, TheCauseOfAFailureIsTheBuildUnlessTheAgentSaidOtherwise) {
  EXPECT_EQ(CauseOf(Failure(false, false)), FailureCause::kBuild);
  EXPECT_EQ(CauseOf(Failure(true, false)), FailureCause::kInfrastructure);
  EXPECT_EQ(CauseOf(Failure(true, true)), FailureCause::kRefused);
  EXPECT_EQ(CauseOf(Failure(false, true)), FailureCause::kRefused);
}

// The failure table (docs/ARCHITECTURE.md): each row is a cause, the retries the job has
// used, the cap, and what the job does.
TEST(JobRulesTest, FailureTable) {
  struct Row {
    FailureCause cause;
    uint32_t retries;
    uint32_t max_retries;
    FailureVerdict verdict;
  };
  const Row rows[] = {
      // A failed build step fails at once, whatever is left.
      {FailureCause::kBuild, 0, 10, FailureVerdict::kFailBuild},
      {FailureCause::kBuild, 3, 10, FailureVerdict::kFailBuild},
      // A refusal never uses a retry and never fails the build, however many came before.
      {FailureCause::kRefused, 0, 10, FailureVerdict::kRequeue},
      {FailureCause::kRefused, 10, 10, FailureVerdict::kRequeue},
      {FailureCause::kRefused, 0, 0, FailureVerdict::kRequeue},
      // Faults outside the build are retried until the job's own cap.
      {FailureCause::kInfrastructure, 0, 10, FailureVerdict::kRetry},
      {FailureCause::kInfrastructure, 9, 10, FailureVerdict::kRetry},
      {FailureCause::kInfrastructure, 10, 10, FailureVerdict::kFailBuild},
      {FailureCause::kInfrastructure, 0, 0, FailureVerdict::kFailBuild},
  };
  for (const Row& row : rows) {
    JobRecord job = HeldJob(row.retries + 1);
    job.retries = row.retries;
    EXPECT_EQ(JudgeFailure(job, row.cause, row.max_retries), row.verdict)
        << "cause " << static_cast<int>(row.cause) << ", retries " << row.retries << " of "
        << row.max_retries;
  }
}

TEST(JobRulesTest, TheAttemptNumberIsNotTheRetryCount) {
  // Refusals and reassignments raise the attempt; only faults outside the build count.
  JobRecord job = HeldJob(25);
  job.retries = 2;
  EXPECT_EQ(JudgeFailure(job, FailureCause::kInfrastructure, 10), FailureVerdict::kRetry);
}

TEST(JobRulesTest, BuildFailureMessageNamesPlatformAgentAndAttempts) {
  EXPECT_EQ(BuildFailureMessage(HeldJob(1), FailureCause::kBuild, "a1", "exit status 2"),
            "linux/arm64 failed on agent a1 after 1 attempt: exit status 2");
  JobRecord job = HeldJob(11);
  job.retries = 10;
  EXPECT_EQ(BuildFailureMessage(job, FailureCause::kInfrastructure, "a2", "registry 503"),
            "linux/arm64 failed on agent a2 after 11 attempts, its 10 retries after faults "
            "outside the build used up (--max-retries): registry 503");
}

}  // namespace
}  // namespace manifold
