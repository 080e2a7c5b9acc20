#include "coordinator/job_timeouts.h"

#include <gtest/gtest.h>

namespace manifold {
namespace {

using std::chrono::seconds;

const LoopClock::time_point kStart{std::chrono::hours(1)};

Platform Of(const char* text) { return ParsePlatform(text).value(); }

WaitingJob Waiting(uint64_t id, const char* platform, EmulationPolicy emulation,
                   LoopClock::time_point since) {
  auto spec = std::make_shared<BuildSpec>();
  spec->emulation = emulation;
  return {QueuedJob{id, 1, Of(platform), spec}, since, ""};
}

TEST(JobTimeoutsTest, OnlyAttemptsPastTheirDeadlineExpire) {
  RunningJobs running;
  running[1] = {{1, 1}, "a1", Of("linux/amd64"), kStart + seconds(10), 10, kStart};
  running[2] = {{2, 3}, "a2", Of("linux/arm64"), kStart + seconds(20), 0, kStart};
  EXPECT_TRUE(ExpiredAttempts(running, kStart + seconds(10)).empty());
  std::vector<RunningJob> expired = ExpiredAttempts(running, kStart + seconds(21));
  ASSERT_EQ(expired.size(), 2u);
  EXPECT_EQ(AttemptTimeoutError(expired[0]), "timed out after 10 s");
  EXPECT_EQ(AttemptTimeoutBuildError(expired[0]),
            "linux/amd64 timed out on agent a1 after 10 s (attempt 1)");
  // Resumed after a restart: the limit is not known.
  EXPECT_EQ(AttemptTimeoutBuildError(expired[1]),
            "linux/arm64 timed out on agent a2 after its job timeout (attempt 3)");
}

TEST(JobTimeoutsTest, AJobWaitsForTheQueueTimeoutAfterThePlatformWasLastServed) {
  QueueRules rules{seconds(60), seconds(5), kStart};
  WaitingJobs pending;
  pending[1] = Waiting(1, "linux/arm64", EmulationPolicy::kFallback, kStart);
  PlatformSightings sightings;
  sightings.Note({{Of("linux/arm64"), false}}, kStart + seconds(30));
  sightings.Reset();  // the agent went away at 30 s
  EXPECT_TRUE(CheckQueue(pending, sightings, rules, kStart + seconds(90)).expired.empty());
  QueueCheck check = CheckQueue(pending, sightings, rules, kStart + seconds(91));
  ASSERT_EQ(check.expired.size(), 1u);
  EXPECT_EQ(check.expired[0].job_id, 1u);
  EXPECT_EQ(check.expired[0].error,
            "linux/arm64: no agent serving this platform was connected for 60 s; start one "
            "(manifold-agent --platform linux/arm64) or drop the platform");
}

TEST(JobTimeoutsTest, AServedPlatformNeverTimesOutAndARestartGivesAFullWait) {
  WaitingJobs pending;
  pending[1] = Waiting(1, "linux/amd64", EmulationPolicy::kFallback, kStart);
  PlatformSightings sightings;
  sightings.Note({{Of("linux/amd64"), false}}, kStart + seconds(500));
  EXPECT_TRUE(
      CheckQueue(pending, sightings, {seconds(60), seconds(5), kStart}, kStart + seconds(500))
          .expired.empty());
  sightings = {};
  // A coordinator started at 400 s gives the job until 460 s.
  QueueRules restarted{seconds(60), seconds(5), kStart + seconds(400)};
  EXPECT_TRUE(CheckQueue(pending, sightings, restarted, kStart + seconds(460)).expired.empty());
  EXPECT_EQ(CheckQueue(pending, sightings, restarted, kStart + seconds(461)).expired.size(), 1u);
}

TEST(JobTimeoutsTest, NativeOnlyJobsAreNotServedByEmulatedAgents) {
  QueueRules rules{seconds(60), seconds(5), kStart};
  WaitingJobs pending;
  pending[1] = Waiting(1, "linux/arm64", EmulationPolicy::kNever, kStart);
  PlatformSightings sightings;
  sightings.Note({{Of("linux/arm64"), true}}, kStart + seconds(61));
  QueueCheck check = CheckQueue(pending, sightings, rules, kStart + seconds(61));
  ASSERT_EQ(check.expired.size(), 1u);
  EXPECT_NE(check.expired[0].error.find("no native agent for this platform was connected for 60 s"),
            std::string::npos);
  EXPECT_NE(check.expired[0].error.find("--emulation fallback"), std::string::npos);
}

TEST(JobTimeoutsTest, TheNativeWaitEndsOnceAndSaysSo) {
  QueueRules rules{seconds(60), seconds(5), kStart};
  WaitingJobs pending;
  pending[1] = Waiting(1, "linux/arm64", EmulationPolicy::kFallback, kStart);
  PlatformSightings sightings;
  sightings.Note({{Of("linux/arm64"), true}}, kStart);
  EXPECT_FALSE(CheckQueue(pending, sightings, rules, kStart + seconds(4)).fallback_opened);
  EXPECT_FALSE(pending[1].native_wait_over);
  EXPECT_TRUE(CheckQueue(pending, sightings, rules, kStart + seconds(5)).fallback_opened);
  EXPECT_TRUE(pending[1].native_wait_over);
  EXPECT_FALSE(CheckQueue(pending, sightings, rules, kStart + seconds(6)).fallback_opened);
}

}  // namespace
}  // namespace manifold
