#include "coordinator/merge_order.h"

#include <gtest/gtest.h>

namespace manifold {
namespace {

BuildRecord Build(uint64_t id, std::vector<std::string> tags) {
  BuildRecord build;
  build.id = id;
  build.spec.tags = std::move(tags);
  return build;
}

TEST(MergeOrderTest, OldestFirstWhenNothingIsInFlight) {
  std::deque<BuildRecord> waiting = {Build(1, {"r/a:latest"}), Build(2, {"r/b:latest"})};
  EXPECT_EQ(NextMerge(waiting, {}), 0u);
  EXPECT_EQ(NextMerge({}, {"r/a:latest"}), std::nullopt);
}

TEST(MergeOrderTest, ABuildWaitsForARunningMergeOfOneOfItsTags) {
  std::deque<BuildRecord> waiting = {Build(2, {"r/a:v2", "r/a:latest"}), Build(3, {"r/b:1"})};
  EXPECT_EQ(NextMerge(waiting, {"r/a:latest"}), 1u);
  EXPECT_EQ(NextMerge(waiting, {"r/a:latest", "r/b:1"}), std::nullopt);
  EXPECT_EQ(NextMerge(waiting, {"r/a:v1"}), 0u);  // another tag of the same repository
}

TEST(MergeOrderTest, NoBuildOvertakesAnEarlierWaitingBuildWithACommonTag) {
  // 2 waits for the merge of 1 (in flight) under "latest"; 3 also pushes "latest" and must
  // not go before 2, although no running merge holds any of its own other tags.
  std::deque<BuildRecord> waiting = {Build(2, {"r/a:latest", "r/a:sha-2"}),
                                     Build(3, {"r/a:sha-3", "r/a:latest"}),
                                     Build(4, {"r/c:latest"})};
  EXPECT_EQ(NextMerge(waiting, {"r/a:latest"}), 2u);
  waiting.pop_back();
  EXPECT_EQ(NextMerge(waiting, {"r/a:latest"}), std::nullopt);
  // Blocked through a tag the earlier waiting build shares with it, not with the flight.
  std::deque<BuildRecord> chain = {Build(5, {"r/a:latest", "r/a:x"}), Build(6, {"r/a:x"})};
  EXPECT_EQ(NextMerge(chain, {"r/a:latest"}), std::nullopt);
}

}  // namespace
}  // namespace manifold
