#include "agent/prune_plan.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace manifold {
namespace {

using Ids = std::vector<std::string>;
constexpr uint64_t kMB = 1000 * 1000;

// Four named images of 10 MB, used at 100, 300, 200 and 400, and a dangling one.
std::vector<StoredImage> Images() {
  return {{"a", {"localhost/a:latest"}, 10 * kMB, 100},
          {"b", {"localhost/b:latest"}, 10 * kMB, 300},
          {"c", {"docker.io/library/busybox:latest"}, 10 * kMB, 200},
          {"old", {}, 10 * kMB, 500},
          {"d", {"localhost/d:latest"}, 10 * kMB, 400}};
}

TEST(PrunePlanTest, NothingGoesWhileUnderTheCapAndAboveTheFloor) {
  EXPECT_EQ(PickImagesToPrune(Images(), {}, 50 * kMB, 100 * kMB, {50 * kMB, 10 * kMB}), Ids{});
  EXPECT_EQ(PickImagesToPrune(Images(), {}, 50 * kMB, 100 * kMB, {0, 0}), Ids{});
}

TEST(PrunePlanTest, DanglingFirstThenLeastRecentlyUsedUntilUnderTheCap) {
  EXPECT_EQ(PickImagesToPrune(Images(), {}, 50 * kMB, 100 * kMB, {25 * kMB, 0}),
            (Ids{"old", "a", "c"}));
}

TEST(PrunePlanTest, ImagesInUseAreNeverPicked) {
  EXPECT_EQ(PickImagesToPrune(Images(), {"a", "old"}, 50 * kMB, 100 * kMB, {25 * kMB, 0}),
            (Ids{"c", "b", "d"}));
}

TEST(PrunePlanTest, TheFloorAloneMakesItPrune) {
  EXPECT_EQ(PickImagesToPrune(Images(), {}, 50 * kMB, 5 * kMB, {0, 20 * kMB}), (Ids{"old", "a"}));
}

TEST(PrunePlanTest, EveryCandidateWhenEvenAllAreNotEnough) {
  EXPECT_EQ(PickImagesToPrune(Images(), {"d"}, 500 * kMB, 100 * kMB, {25 * kMB, 0}),
            (Ids{"old", "a", "c", "b"}));
}

TEST(PrunePlanTest, OverGoal) {
  EXPECT_FALSE(OverGoal({0, 0}, 1000, 0));
  EXPECT_TRUE(OverGoal({999, 0}, 1000, 0));
  EXPECT_FALSE(OverGoal({1000, 0}, 1000, 0));
  EXPECT_TRUE(OverGoal({0, 10}, 0, 9));
  EXPECT_FALSE(OverGoal({0, 10}, 0, 10));
}

TEST(PrunePlanTest, FloorsAreSizesOrShares) {
  Result<DiskFloor> size = ParseDiskFloor("5g");
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(FloorBytes(*size, 100 * kMB), uint64_t{5} << 30);
  EXPECT_EQ(DescribeFloor(*size), "5 GiB");
  Result<DiskFloor> share = ParseDiskFloor("10%");
  ASSERT_TRUE(share.ok());
  EXPECT_EQ(FloorBytes(*share, 100 * kMB), 10 * kMB);
  EXPECT_EQ(DescribeFloor(*share), "10% of the disk");
  Result<DiskFloor> none = ParseDiskFloor("0");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(FloorBytes(*none, 100 * kMB), 0u);
  EXPECT_FALSE(ParseDiskFloor("100%").ok());
  EXPECT_FALSE(ParseDiskFloor("x%").ok());
  EXPECT_FALSE(ParseDiskFloor("lots").ok());
}

TEST(PrunePlanTest, SizesAsBuildahPrintsThem) {
  EXPECT_EQ(*ParseDecimalSize("4.37 MB"), 4370000u);
  EXPECT_EQ(*ParseDecimalSize("512 B"), 512u);
  EXPECT_EQ(*ParseDecimalSize("1.2 GB"), 1200000000u);
  EXPECT_EQ(*ParseDecimalSize("2 kB"), 2000u);
  EXPECT_FALSE(ParseDecimalSize("").ok());
  EXPECT_FALSE(ParseDecimalSize("4.37 MiB").ok());
  EXPECT_FALSE(ParseDecimalSize("many MB").ok());
}

}  // namespace
}  // namespace manifold
