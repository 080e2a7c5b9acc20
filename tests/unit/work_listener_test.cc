#include "coordinator/work_listener.h"

#include <gtest/gtest.h>

namespace manifold {
namespace {

TEST(WorkNotice, NamesTheBuildOfAnotherCoordinatorsNotificationOnly) {
  std::optional<WorkNotice> build = ParseWorkNotice("build 12 host-b/0.0.0.0:7080", "host-a");
  ASSERT_TRUE(build.has_value());
  EXPECT_EQ(build->kind, WorkNotice::Kind::kBuild);
  EXPECT_EQ(build->build_id, 12u);
  std::optional<WorkNotice> cancel = ParseWorkNotice("cancel 7 b", "a");
  ASSERT_TRUE(cancel.has_value());
  EXPECT_EQ(cancel->kind, WorkNotice::Kind::kCancel);
  EXPECT_EQ(cancel->build_id, 7u);
  // Its own are not news; what does not parse is dropped.
  EXPECT_FALSE(ParseWorkNotice("build 12 a", "a").has_value());
  for (const char* bad : {"", "build", "build 12", "build x b", "drop 12 b", "build -1 b",
                          "build 99999999999999999999 b"}) {
    EXPECT_FALSE(ParseWorkNotice(bad, "a").has_value()) << bad;
  }
}

}  // namespace
}  // namespace manifold
