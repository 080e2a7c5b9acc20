// The JSON and text renderings of log lines, and the ids a call site passes with LogIds.
#include "common/log.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace manifold {
namespace {

using nlohmann::json;

TEST(LogTest, JsonLineCarriesIdsAsFieldsAndTheMessageWithoutThem) {
  std::string payload =
      fmt::format("{}job {} attempt {} failed on {}",
                  LogIds{.build = 3, .job = 7, .attempt = 2, .agent = "arm-1"}, 7, 2, "arm-1");
  json line = json::parse(FormatJsonLine("2026-11-29T05:40:00.123Z", "info", payload, {}));
  EXPECT_EQ(line["time"], "2026-11-29T05:40:00.123Z");
  EXPECT_EQ(line["level"], "info");
  EXPECT_EQ(line["msg"], "job 7 attempt 2 failed on arm-1");
  EXPECT_EQ(line["build"], 3);
  EXPECT_EQ(line["job"], 7);
  EXPECT_EQ(line["attempt"], 2);
  EXPECT_EQ(line["agent"], "arm-1");
  EXPECT_EQ(StripLogIds(payload), "job 7 attempt 2 failed on arm-1");
}

TEST(LogTest, UnsetIdsAreLeftOutAndFixedFieldsAreOnEveryLine) {
  std::string payload = fmt::format("{}build {} pushed", LogIds{.build = 9}, 9);
  json line = json::parse(FormatJsonLine("t", "warning", payload, {{"agent", "amd64-1"}}));
  EXPECT_EQ(line["msg"], "build 9 pushed");
  EXPECT_EQ(line["build"], 9);
  EXPECT_FALSE(line.contains("job"));
  EXPECT_FALSE(line.contains("attempt"));
  EXPECT_EQ(line["agent"], "amd64-1");

  json plain = json::parse(FormatJsonLine("t", "info", "said goodbye", {{"agent", "a"}}));
  EXPECT_EQ(plain["msg"], "said goodbye");
  EXPECT_EQ(plain["agent"], "a");
}

TEST(LogTest, MessagesThatAreNotTextStillMakeJson) {
  // Quotes, newlines, control characters and invalid UTF-8 from a build's error text.
  std::string payload = "RUN \"false\"\nexited\x01 \xff\xfe";
  json line = json::parse(FormatJsonLine("t", "error", payload, {}));
  EXPECT_EQ(line["msg"].get<std::string>().substr(0, 20), "RUN \"false\"\nexited\x01 ");
  // An agent id holding the separators cannot forge fields.
  std::string forged = fmt::format("{}x", LogIds{.agent = "a\x1f"
                                                          "build\x1f"
                                                          "5"});
  json forged_line = json::parse(FormatJsonLine("t", "info", forged, {}));
  EXPECT_FALSE(forged_line.contains("build"));
  EXPECT_EQ(forged_line["msg"], "x");
}

TEST(LogTest, FormatNamesMustBeTextOrJson) {
  EXPECT_EQ(*ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_EQ(*ParseLogFormat("text"), LogFormat::kText);
  Result<LogFormat> bad = ParseLogFormat("yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("text, json"), std::string::npos);
}

}  // namespace
}  // namespace manifold
