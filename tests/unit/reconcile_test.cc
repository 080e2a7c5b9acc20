// Reconcile: the agent's list of held attempts against the loop's view of running jobs.
#include "coordinator/reconcile.h"

#include <gtest/gtest.h>

namespace manifold {
namespace {

using std::chrono::seconds;

const LoopClock::time_point kAt{std::chrono::hours(1)};

RunningJob Running(uint64_t job_id, uint32_t attempt, const char* agent_id,
                   LoopClock::time_point assigned_at) {
  RunningJob running;
  running.job = {job_id, attempt};
  running.agent_id = agent_id;
  running.assigned_at = assigned_at;
  return running;
}

TEST(ReconcileTest, AgreeingViewsChangeNothing) {
  RunningJobs running = {{1, Running(1, 2, "a1", kAt)}, {2, Running(2, 1, "a2", kAt)}};
  Reconciliation out = Reconcile(running, {1}, "a1", {{1, 2}}, kAt + seconds(5));
  EXPECT_TRUE(out.to_cancel.empty());
  EXPECT_TRUE(out.lost.empty());
}

TEST(ReconcileTest, AnAttemptHeldThatIsNotCurrentThereIsCanceled) {
  RunningJobs running = {{1, Running(1, 2, "a1", kAt)}, {2, Running(2, 1, "a2", kAt)}};
  // Job 1 at an older attempt, job 2 which another agent holds, job 3 which ended.
  Reconciliation out =
      Reconcile(running, {1}, "a1", {{1, 2}, {1, 1}, {2, 1}, {3, 1}, {3, 1}}, kAt + seconds(5));
  EXPECT_EQ(out.to_cancel, (std::vector<JobRef>{{1, 1}, {2, 1}, {3, 1}}));
  EXPECT_TRUE(out.lost.empty());
}

TEST(ReconcileTest, OnlyAssignmentsOlderThanThePreviousHeartbeatCanBeLost) {
  RunningJobs running = {{1, Running(1, 1, "a1", kAt)},
                         {2, Running(2, 1, "a1", kAt + seconds(2))},
                         {3, Running(3, 1, "a2", kAt)}};
  Reconciliation out = Reconcile(running, {1, 2}, "a1", {}, kAt + seconds(2));
  EXPECT_EQ(out.lost, (std::vector<JobRef>{{1, 1}}));  // job 2 may still be on its way
  EXPECT_TRUE(out.to_cancel.empty());
}

}  // namespace
}  // namespace manifold
