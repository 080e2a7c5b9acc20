// Reconcile: the agent's list of held attempts against the loop's view of running jobs.
#include "coordinator/reconcile.h"

#include <gtest/gtest.h>

namespace manifold {
namespace {

RunningJob Running(uint64_t job_id, uint32_t attempt, const char* agent_id) {
  RunningJob running;
  running.job = {job_id, attempt};
  running.agent_id = agent_id;
  return running;
}

TEST(ReconcileTest, AgreeingViewsChangeNothing) {
  RunningJobs running = {{1, Running(1, 2, "a1")}, {2, Running(2, 1, "a2")}};
  Reconciliation out = Reconcile(running, {{1, 1}}, "a1", {{1, 2}}, 1);
  EXPECT_TRUE(out.to_cancel.empty());
  EXPECT_TRUE(out.lost.empty());
}

TEST(ReconcileTest, AnAttemptHeldThatIsNotCurrentThereIsCanceled) {
  RunningJobs running = {{1, Running(1, 2, "a1")}, {2, Running(2, 1, "a2")}};
  // Job 1 at an older attempt, job 2 which another agent holds, job 3 which ended.
  Reconciliation out =
      Reconcile(running, {{1, 1}}, "a1", {{1, 2}, {1, 1}, {2, 1}, {3, 1}, {3, 1}}, 1);
  EXPECT_EQ(out.to_cancel, (std::vector<JobRef>{{1, 1}, {2, 1}, {3, 1}}));
  EXPECT_TRUE(out.lost.empty());
}

TEST(ReconcileTest, OnlyAssignmentsTheAgentHasReadCanBeLost) {
  RunningJobs running = {{1, Running(1, 1, "a1")},
                         {2, Running(2, 1, "a1")},
                         {3, Running(3, 1, "a1")},
                         {4, Running(4, 1, "a2")}};
  // Job 1 was held when the session began, job 2's assign was the first of the session
  // and job 3's the second; the agent has read one assign.
  Reconciliation out = Reconcile(running, {{1, 0}, {2, 1}, {3, 2}}, "a1", {}, 1);
  EXPECT_EQ(out.lost, (std::vector<JobRef>{{1, 1}, {2, 1}}));  // job 3 may still be on its way
  EXPECT_TRUE(out.to_cancel.empty());
  // Before it has read any, only what it held at the start of the session can be lost.
  EXPECT_EQ(Reconcile(running, {{1, 0}, {2, 1}, {3, 2}}, "a1", {}, 0).lost,
            (std::vector<JobRef>{{1, 1}}));
}

}  // namespace
}  // namespace manifold
