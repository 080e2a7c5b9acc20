#include <gtest/gtest.h>

#include "cli/agents.h"

namespace manifold {
namespace {

TEST(AgentListTest, ParsesAndFormatsConnectedAgents) {
  Result<std::vector<AgentInfo>> agents = ParseAgentList(R"({"coordinator": "coord-b", "agents": [
      {"id": "graviton-1", "hostname": "ip-10-0-0-7", "version": "0.1.0",
       "platforms": [{"platform": "linux/arm64", "emulated": false},
                     {"platform": "linux/arm/v7", "emulated": true}],
       "slots": 4, "busy": 1, "state": "draining", "last_seen_ms_ago": 1500}]})");
  ASSERT_TRUE(agents.ok()) << agents.status().message();
  std::string table = FormatAgentList(*agents);
  EXPECT_NE(table.find("ID"), std::string::npos);
  EXPECT_NE(table.find("graviton-1  linux/arm64, linux/arm/v7 (emulated)  1/4"), std::string::npos)
      << table;
  EXPECT_NE(table.find("draining"), std::string::npos);
  EXPECT_TRUE(table.ends_with("ip-10-0-0-7  coord-b\n")) << table;
  EXPECT_EQ(FormatAgentList({}), "no agents connected\n");
  EXPECT_FALSE(ParseAgentList(R"({"agents": [{"id": "x"}]})").ok());
  EXPECT_FALSE(ParseAgentList("<html>").ok());
}

}  // namespace
}  // namespace manifold
