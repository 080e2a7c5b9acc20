#include "common/validate.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace manifold {
namespace {

// The message of a refusal, or "" when the value was accepted.
std::string Refusal(const Status& status) {
  EXPECT_TRUE(status.ok() || status.code() == Status::Code::kInvalidArgument);
  return status.message();
}

TEST(ValidateTest, BuildArgNames) {
  for (const char* name : {"VERSION", "_x", "a1_B2", "http_proxy"}) {
    EXPECT_TRUE(ValidateBuildArgName("build_args", name).ok()) << name;
  }
  for (std::string name :
       std::vector<std::string>{"", "1ST", "A-B", "A B", "A=B", "Ä", std::string(256, 'A')}) {
    std::string message = Refusal(ValidateBuildArgName("build_args", name));
    EXPECT_EQ(message.rfind("field \"build_args\": ", 0), 0u) << message;
  }
  EXPECT_NE(Refusal(ValidateBuildArgName("build_args", "1ST")).find("not starting with a digit"),
            std::string::npos);
}

TEST(ValidateTest, LabelAndAnnotationKeys) {
  for (const char* key :
       {"maintainer", "org.opencontainers.image.source", "com.example/team", "a", "A_b-c.d"}) {
    EXPECT_TRUE(ValidateLabelKey("labels", key).ok()) << key;
  }
  for (std::string key :
       std::vector<std::string>{"", ".hidden", "trailing.", "-x", "has space", "k=v",
                                "emoji\xF0\x9F\x98\x80", std::string(256, 'k')}) {
    std::string message = Refusal(ValidateLabelKey("annotations", key));
    EXPECT_EQ(message.rfind("field \"annotations\": ", 0), 0u) << message;
  }
}

TEST(ValidateTest, StageNames) {
  EXPECT_TRUE(ValidateStageName("target", "build-env_2.x").ok());
  for (std::string name :
       std::vector<std::string>{"", "2nd", "-x", "a b", "a/b", std::string(129, 'a')}) {
    EXPECT_FALSE(ValidateStageName("target", name).ok()) << name;
  }
}

TEST(ValidateTest, SecretIds) {
  for (std::string id : {"npmrc", "aws_credentials", "GITHUB.TOKEN-2", "0"}) {
    EXPECT_TRUE(ValidateSecretId("secrets", id).ok()) << id;
  }
  for (std::string id : std::vector<std::string>{"", ".hidden", "-x", "a/b", "..", "a b", "id=x",
                                                 std::string(129, 'a')}) {
    std::string why = Refusal(ValidateSecretId("secrets", id));
    EXPECT_NE(why.find("field \"secrets\""), std::string::npos) << why;
  }
}

TEST(ValidateTest, TextIsUtf8WithoutNulAndBounded) {
  EXPECT_TRUE(ValidateText("labels", "plain ascii", 100).ok());
  EXPECT_TRUE(ValidateText("labels",
                           "gr\xC3\xBC\xC3\x9F"
                           "e \xE2\x82\xAC \xF0\x9F\x98\x80",
                           100)
                  .ok());
  EXPECT_TRUE(ValidateText("labels", "", 0).ok());

  std::string nul = Refusal(ValidateText("build_args", std::string("a\0b", 3), 100));
  EXPECT_NE(nul.find("NUL byte at offset 1"), std::string::npos) << nul;
  EXPECT_NE(nul.find("\"a\\x00b\""), std::string::npos) << nul;  // shown escaped

  for (std::string bad :
       {"\xC3", "\xC3(", "\xC0\xAF" /* overlong '/' */, "\xED\xA0\x80" /* surrogate */,
        "\xF4\x90\x80\x80" /* > U+10FFFF */, "\xFF"}) {
    std::string message = Refusal(ValidateText("labels", "ok" + bad, 100));
    EXPECT_NE(message.find("not valid UTF-8 at offset 2"), std::string::npos) << message;
  }

  std::string big = Refusal(ValidateText("annotations", std::string(200, 'x'), 100));
  EXPECT_NE(big.find("200 bytes; at most 100"), std::string::npos) << big;
  EXPECT_NE(big.find("...\""), std::string::npos) << big;  // a long value is cut when quoted
}

TEST(ValidateTest, NetworkAndEntitlements) {
  EXPECT_EQ(*ParseBuildNetwork("default"), "");  // what AssignMsg carries for the sandbox
  EXPECT_EQ(*ParseBuildNetwork("none"), "none");
  EXPECT_EQ(*ParseBuildNetwork("host"), "host");
  for (const char* bad : {"", "Host", "bridge", "container:x"}) {
    EXPECT_EQ(ParseBuildNetwork(bad).status().message(),
              std::string("network \"") + bad +
                  "\" is not one of default, none or host (as buildx --network)");
  }
  EXPECT_TRUE(ValidateEntitlement("network.host").ok());
  EXPECT_EQ(ValidateEntitlement("security.insecure").message(),
            "entitlement \"security.insecure\" is not supported: build steps never run "
            "privileged here; the only entitlement is network.host");
  EXPECT_EQ(ValidateEntitlement("net.host").message(),
            "unknown entitlement \"net.host\": the only supported one is network.host");

  EXPECT_TRUE(CheckNetworkEntitlement("", {}).ok());
  EXPECT_TRUE(CheckNetworkEntitlement("none", {}).ok());
  EXPECT_TRUE(CheckNetworkEntitlement("host", {"network.host"}).ok());
  Status refused = CheckNetworkEntitlement("host", {});
  EXPECT_EQ(refused.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(refused.message().find("add --allow network.host"), std::string::npos);
  EXPECT_NE(refused.message().find("--allow-insecure-entitlement network.host"), std::string::npos);
}

}  // namespace
}  // namespace manifold
