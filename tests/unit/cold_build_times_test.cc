#include "coordinator/cold_build_times.h"

#include <gtest/gtest.h>

namespace manifold {
namespace {

const Platform kAmd64{"linux", "amd64", ""};
const Platform kArm64{"linux", "arm64", ""};

TEST(ColdBuildTimesTest, MeasuresEachJobAgainstTheColdMedianBeforeIt) {
  ColdBuildTimes times;
  // The first cold job has nothing to be measured against.
  EXPECT_EQ(times.Observe("r/app", kAmd64, JobCache::kCold, 10), std::nullopt);
  EXPECT_EQ(times.Observe("r/app", kAmd64, JobCache::kWarm, 2), 0.2);
  EXPECT_EQ(times.Observe("r/app", kAmd64, JobCache::kCold, 30), 3.0);  // against 10 alone
  EXPECT_EQ(times.Median("r/app", kAmd64), 20);                         // (10 + 30) / 2
  EXPECT_EQ(times.Observe("r/app", kAmd64, JobCache::kCold, 11), 11.0 / 20);
  EXPECT_EQ(times.Median("r/app", kAmd64), 11);  // the middle of 10, 11, 30
  // Warm jobs do not move the median.
  times.Observe("r/app", kAmd64, JobCache::kWarm, 1);
  EXPECT_EQ(times.Median("r/app", kAmd64), 11);
}

TEST(ColdBuildTimesTest, KeepsRepositoriesAndPlatformsApart) {
  ColdBuildTimes times;
  times.Observe("r/app", kAmd64, JobCache::kCold, 10);
  times.Observe("r/app", kArm64, JobCache::kCold, 100);  // emulated, say
  times.Observe("r/other", kAmd64, JobCache::kCold, 60);
  EXPECT_EQ(times.Observe("r/app", kArm64, JobCache::kWarm, 20), 0.2);
  EXPECT_EQ(times.Observe("r/app", kAmd64, JobCache::kWarm, 5), 0.5);
  EXPECT_EQ(times.Observe("r/new", kAmd64, JobCache::kWarm, 5), std::nullopt);
  EXPECT_EQ(times.keys(), 3u);
}

TEST(ColdBuildTimesTest, KeepsTheLastSamplesOfTheMostRecentKeys) {
  ColdBuildTimes times(/*max_keys=*/2, /*samples=*/3);
  for (double seconds : {100, 100, 100, 10, 10, 10}) {
    times.Observe("r/a", kAmd64, JobCache::kCold, seconds);
  }
  EXPECT_EQ(times.Median("r/a", kAmd64), 10);  // the hundreds have aged out
  times.Observe("r/b", kAmd64, JobCache::kCold, 20);
  times.Observe("r/a", kAmd64, JobCache::kCold, 10);  // a is now the more recent
  times.Observe("r/c", kAmd64, JobCache::kCold, 30);  // full: b goes
  EXPECT_EQ(times.keys(), 2u);
  EXPECT_EQ(times.Median("r/b", kAmd64), std::nullopt);
  EXPECT_EQ(times.Median("r/a", kAmd64), 10);
  EXPECT_EQ(times.Median("r/c", kAmd64), 30);
}

TEST(ColdBuildTimesTest, AZeroMedianGivesNoRatio) {
  ColdBuildTimes times;
  times.Observe("r/app", kAmd64, JobCache::kCold, 0);
  EXPECT_EQ(times.Observe("r/app", kAmd64, JobCache::kWarm, 1), std::nullopt);
}

}  // namespace
}  // namespace manifold
