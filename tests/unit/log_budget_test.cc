#include "coordinator/log_budget.h"

#include <gtest/gtest.h>

namespace manifold {
namespace {

using std::chrono::milliseconds;
using Verdict = LogBudget::Verdict;

const LogBudget::Clock::time_point kStart{std::chrono::hours(1)};

TEST(LogBudgetTest, ABurstIsStoredThenOneNoticeThenSilence) {
  LogBudget budget({.bytes_per_second = 100, .burst_bytes = 1000, .chunk_max_bytes = 600});
  EXPECT_EQ(budget.Charge(1, 600, kStart), Verdict::kStore);
  EXPECT_EQ(budget.Charge(1, 400, kStart), Verdict::kStore);
  EXPECT_EQ(budget.Charge(1, 1, kStart), Verdict::kReplaceByNotice);
  EXPECT_EQ(budget.Charge(1, 1, kStart), Verdict::kDrop);
  // Another job has its own bucket.
  EXPECT_EQ(budget.Charge(2, 600, kStart), Verdict::kStore);
}

TEST(LogBudgetTest, TheBucketRefillsAtTheRateAndStoringAgainEndsTheRun) {
  LogBudget budget({.bytes_per_second = 100, .burst_bytes = 1000, .chunk_max_bytes = 1000});
  EXPECT_EQ(budget.Charge(1, 1000, kStart), Verdict::kStore);
  EXPECT_EQ(budget.Charge(1, 60, kStart + milliseconds(500)), Verdict::kReplaceByNotice);
  EXPECT_EQ(budget.Charge(1, 50, kStart + milliseconds(500)), Verdict::kStore);  // 50 refilled
  // The run of drops ended: the next drop gets a notice again.
  EXPECT_EQ(budget.Charge(1, 500, kStart + milliseconds(600)), Verdict::kReplaceByNotice);
  // Never more than the burst, however long the job was quiet.
  EXPECT_EQ(budget.Charge(1, 1000, kStart + std::chrono::hours(1)), Verdict::kStore);
  EXPECT_EQ(budget.Charge(1, 10, kStart + std::chrono::hours(1)), Verdict::kReplaceByNotice);
}

TEST(LogBudgetTest, AChunkOverTheChunkLimitIsDroppedWhateverTheBudget) {
  LogBudget budget({.bytes_per_second = 100, .burst_bytes = 1000, .chunk_max_bytes = 10});
  EXPECT_EQ(budget.Charge(1, 11, kStart), Verdict::kReplaceByNotice);
  EXPECT_EQ(budget.Charge(1, 10, kStart), Verdict::kStore);
}

TEST(LogBudgetTest, IdleBucketsAreForgottenOnceTheyWouldBeFullAgain) {
  LogBudget budget({.bytes_per_second = 100, .burst_bytes = 1000, .chunk_max_bytes = 1000});
  budget.Charge(1, 10, kStart);
  budget.Charge(2, 10, kStart + std::chrono::seconds(5));
  budget.ForgetIdle(kStart + std::chrono::seconds(10));  // refill time 10 s: both kept
  EXPECT_EQ(budget.tracked_jobs(), 2u);
  budget.ForgetIdle(kStart + std::chrono::seconds(11));
  EXPECT_EQ(budget.tracked_jobs(), 1u);
}

TEST(LogBudgetTest, TheNoticeSaysWhatTheLimitsAreAndWhereToChangeThem) {
  LogBudget budget({.bytes_per_second = 100, .burst_bytes = 1000, .chunk_max_bytes = 10});
  EXPECT_EQ(budget.Notice(),
            "\nmanifold: build output dropped here: the job sent more than 100 bytes/s (bursts "
            "up to 1000 bytes, chunks up to 10 bytes); see the coordinator's "
            "--log-bytes-per-second\n");
}

}  // namespace
}  // namespace manifold
