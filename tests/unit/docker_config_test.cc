#include "common/docker_config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/imagetools.h"
#include "tests/support/temp_dir.h"

namespace manifold {
namespace {

void Write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(Base64, RoundTripsEveryPaddingLength) {
  for (std::string text : {"", "a", "ab", "abc", "user:p@ss:word", "\xff\x00\x10"}) {
    std::optional<std::string> decoded = Base64Decode(Base64Encode(text));
    ASSERT_TRUE(decoded.has_value()) << text;
    EXPECT_EQ(*decoded, text);
  }
  EXPECT_EQ(Base64Encode("ci:s3cret"), "Y2k6czNjcmV0");
  EXPECT_FALSE(Base64Decode("not base64!").has_value());
}

TEST(DockerConfigDir, PrefersDockerConfigThenHome) {
  std::map<std::string, const char*> env = {{"DOCKER_CONFIG", "/cfg"}, {"HOME", "/home/u"}};
  auto lookup = [&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second;
  };
  EXPECT_EQ(DockerConfigDir(lookup), "/cfg");
  env.erase("DOCKER_CONFIG");
  EXPECT_EQ(DockerConfigDir(lookup), "/home/u/.docker");
  env.clear();
  EXPECT_EQ(DockerConfigDir(lookup), "");
}

TEST(LoadRegistryCredentials, ReadsAuthIdentityTokensAndDockerHubKeys) {
  test::TempDir dir;
  Write(dir.path() + "/config.json", R"({"auths": {
    "registry.example.com": {"auth": ")" +
                                         Base64Encode("ci:pa:ss") + R"("},
    "https://ghcr.example.com": {"auth": "", "identitytoken": "refresh-me"},
    "https://index.docker.io/v1/": {"auth": ")" +
                                         Base64Encode("hub:pw") + R"("}}})");
  auto creds = LoadRegistryCredentials(dir.path(), "registry.example.com");
  ASSERT_TRUE(creds.ok()) << creds.status().message();
  ASSERT_TRUE(creds->has_value());
  EXPECT_EQ((*creds)->username, "ci");
  EXPECT_EQ((*creds)->password, "pa:ss");  // only the first ':' separates

  creds = LoadRegistryCredentials(dir.path(), "ghcr.example.com");
  ASSERT_TRUE(creds.ok() && creds->has_value());
  EXPECT_EQ((*creds)->identity_token, "refresh-me");

  creds = LoadRegistryCredentials(dir.path(), "docker.io");
  ASSERT_TRUE(creds.ok() && creds->has_value());
  EXPECT_EQ((*creds)->username, "hub");

  creds = LoadRegistryCredentials(dir.path(), "other.example.com");
  ASSERT_TRUE(creds.ok());
  EXPECT_FALSE(creds->has_value());
  creds = LoadRegistryCredentials(dir.path() + "/missing", "registry.example.com");
  ASSERT_TRUE(creds.ok());
  EXPECT_FALSE(creds->has_value());
}

TEST(LoadRegistryCredentials, ExplainsHelpersAndBrokenFilesWithoutQuotingSecrets) {
  test::TempDir dir;
  Write(dir.path() + "/config.json",
        R"({"auths": {"r.example.com": {}}, "credsStore": "desktop"})");
  auto creds = LoadRegistryCredentials(dir.path(), "r.example.com");
  ASSERT_FALSE(creds.ok());
  EXPECT_NE(creds.status().message().find("docker-credential-desktop"), std::string::npos)
      << creds.status().message();
  EXPECT_NE(creds.status().message().find("manifold login"), std::string::npos);

  Write(dir.path() + "/config.json", R"({"auths": {"r.example.com": {"auth": "c2VjcmV0"}}})");
  creds = LoadRegistryCredentials(dir.path(), "r.example.com");
  ASSERT_FALSE(creds.ok());  // base64 of "secret": no ':'
  EXPECT_EQ(creds.status().message().find("c2VjcmV0"), std::string::npos);
  EXPECT_EQ(creds.status().message().find("secret"), std::string::npos);

  Write(dir.path() + "/config.json", "{not json");
  EXPECT_FALSE(LoadRegistryCredentials(dir.path(), "r.example.com").ok());
}

TEST(StoreRegistryCredentials, WritesLikeDockerLoginKeepingOtherKeys) {
  test::TempDir dir;
  const std::string config_dir = dir.path() + "/new/.docker";
  ASSERT_TRUE(StoreRegistryCredentials(config_dir, "r.example.com:5000", "ci", "pw").ok());
  ASSERT_TRUE(StoreRegistryCredentials(config_dir, "docker.io", "hub", "pw2").ok());
  struct stat st;
  ASSERT_EQ(stat((config_dir + "/config.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  nlohmann::json j = nlohmann::json::parse(Read(config_dir + "/config.json"));
  EXPECT_EQ(j["auths"]["r.example.com:5000"]["auth"], Base64Encode("ci:pw"));
  EXPECT_EQ(j["auths"]["https://index.docker.io/v1/"]["auth"], Base64Encode("hub:pw2"));

  j["proxies"] = {{"default", {{"httpProxy", "http://proxy:3128"}}}};
  Write(config_dir + "/config.json", j.dump());
  ASSERT_TRUE(StoreRegistryCredentials(config_dir, "r.example.com:5000", "ci", "new").ok());
  j = nlohmann::json::parse(Read(config_dir + "/config.json"));
  EXPECT_EQ(j["proxies"]["default"]["httpProxy"], "http://proxy:3128");
  EXPECT_EQ(j["auths"]["r.example.com:5000"]["auth"], Base64Encode("ci:new"));
  auto creds = LoadRegistryCredentials(config_dir, "r.example.com:5000");
  ASSERT_TRUE(creds.ok() && creds->has_value());
  EXPECT_EQ((*creds)->password, "new");

  EXPECT_FALSE(StoreRegistryCredentials(config_dir, "r.example.com", "a:b", "pw").ok());
}

TEST(ParseIndexAnnotations, AcceptsIndexTargetsOnly) {
  auto parsed = ParseIndexAnnotations({"index:a=1", "b=2=3", "index:c="});
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(*parsed, (std::map<std::string, std::string>{{"a", "1"}, {"b", "2=3"}, {"c", ""}}));
  EXPECT_FALSE(ParseIndexAnnotations({"manifest:a=1"}).ok());
  EXPECT_FALSE(ParseIndexAnnotations({"novalue"}).ok());
  EXPECT_FALSE(ParseIndexAnnotations({"index:=v"}).ok());
}

}  // namespace
}  // namespace manifold
