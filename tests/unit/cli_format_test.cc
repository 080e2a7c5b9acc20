#include <gtest/gtest.h>

#include "cli/format.h"

namespace manifold {
namespace {

TEST(FormatDuration, SecondsMinutesHours) {
  EXPECT_EQ(FormatDuration(std::chrono::seconds(0)), "0s");
  EXPECT_EQ(FormatDuration(std::chrono::seconds(59)), "59s");
  EXPECT_EQ(FormatDuration(std::chrono::seconds(185)), "3m05s");
  EXPECT_EQ(FormatDuration(std::chrono::seconds(7620)), "2h07m");
  EXPECT_EQ(FormatDuration(std::chrono::seconds(-3)), "0s");
}

TEST(ParseTimestamp, OnlyTheCoordinatorsUtcFormat) {
  auto t = ParseTimestamp("1970-01-01T00:01:40Z");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*t), 100);
  EXPECT_FALSE(ParseTimestamp("1970-01-01T00:01:40+02:00").has_value());
  EXPECT_FALSE(ParseTimestamp("1970-01-01T00:01:40Zjunk").has_value());
  EXPECT_FALSE(ParseTimestamp("").has_value());
}

}  // namespace
}  // namespace manifold
