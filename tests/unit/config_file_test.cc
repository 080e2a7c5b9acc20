// Config files: the file reaches the options through their environment variables, so a
// flag beats the environment, which beats the file, which beats the default.
#include "common/config_file.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

#include "tests/support/temp_dir.h"

namespace manifold {
namespace {

constexpr const char* kVariables[] = {"TEST_CFG_NAME", "TEST_CFG_SLOTS", "TEST_CFG_LABELS",
                                      "TEST_CFG_FAST", kConfigEnv};

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : kVariables) unsetenv(name);
    app_.add_option("--name", name_)->envname("TEST_CFG_NAME");
    app_.add_option("--slots", slots_)->envname("TEST_CFG_SLOTS")->check(CLI::Range(1, 64));
    app_.add_option("--label", labels_)->envname("TEST_CFG_LABELS")->delimiter(',');
    app_.add_flag("--fast", fast_)->envname("TEST_CFG_FAST");
    app_.add_option("--unbound", unbound_);  // no environment variable: not for the file
  }
  void TearDown() override {
    for (const char* name : kVariables) unsetenv(name);
  }

  std::string Write(const std::string& text) {
    std::string path = dir_.path() + "/manifold.toml";
    std::ofstream(path, std::ios::trunc) << text;
    return path;
  }

  // Parses ARGS (after the program name) the way the programs do.
  std::optional<int> Parse(std::vector<std::string> args) {
    args.insert(args.begin(), "manifold-test");
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    return ParseWithConfigFile(app_, static_cast<int>(argv.size()), argv.data());
  }

  test::TempDir dir_;
  CLI::App app_;
  std::string name_ = "default";
  int slots_ = 1;
  std::vector<std::string> labels_;
  bool fast_ = false;
  std::string unbound_;
};

TEST_F(ConfigFileTest, TheFileSetsOptionsAndLeavesNoVariablesBehind) {
  std::string path = Write(
      "# a comment\n"
      "name = \"from file\"\n"
      "slots = 8\n"
      "label = [\"rack=4\", \"zone=a\"]\n"
      "fast = true\n");
  EXPECT_EQ(Parse({"--config", path}), std::nullopt);
  EXPECT_EQ(name_, "from file");
  EXPECT_EQ(slots_, 8);
  EXPECT_EQ(labels_, (std::vector<std::string>{"rack=4", "zone=a"}));
  EXPECT_TRUE(fast_);
  for (const char* name : kVariables) EXPECT_EQ(std::getenv(name), nullptr) << name;
}

TEST_F(ConfigFileTest, FlagBeatsEnvironmentBeatsFileBeatsDefault) {
  std::string path = Write("name = \"from file\"\nslots = 8\n");
  setenv("TEST_CFG_NAME", "from env", 1);
  setenv("TEST_CFG_SLOTS", "4", 1);
  setenv(kConfigEnv, path.c_str(), 1);  // the file named by MANIFOLD_CONFIG
  EXPECT_EQ(Parse({"--slots", "2"}), std::nullopt);
  EXPECT_EQ(name_, "from env");
  EXPECT_EQ(slots_, 2);
  EXPECT_STREQ(std::getenv("TEST_CFG_NAME"), "from env");  // the caller's own, kept
  EXPECT_TRUE(labels_.empty());
  EXPECT_FALSE(fast_);
}

TEST_F(ConfigFileTest, BadFilesAreErrorsThatNameTheFileAndTheSetting) {
  auto load = [&](const std::string& path) {
    std::vector<std::string> set;
    std::vector<std::string> args = {"manifold-test", "--config=" + path};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    Status s = LoadConfigFile(app_, static_cast<int>(argv.size()), argv.data(), &set);
    EXPECT_TRUE(s.ok() || set.empty());
    return s;
  };
  auto error = [&](const std::string& text) {
    Status s = load(Write(text));
    return s.ok() ? std::string("ok") : s.message();
  };
  EXPECT_NE(error("nmae = \"x\"\n").find("\"nmae\" is not an option"), std::string::npos);
  EXPECT_NE(error("unbound = \"x\"\n").find("\"unbound\" is not an option"), std::string::npos);
  EXPECT_NE(error("config = \"other.toml\"\n").find("\"config\" is not an option"),
            std::string::npos);
  EXPECT_NE(error("[agent]\nname = \"x\"\n").find("tables are not used"), std::string::npos);
  EXPECT_NE(error("name = [\"a\", \"b\"]\n").find("\"name\" takes one value"), std::string::npos);
  EXPECT_NE(error("nmae = 1\n").find(dir_.path() + "/manifold.toml"), std::string::npos);

  Status missing = load(dir_.path() + "/missing.toml");
  EXPECT_EQ(missing.code(), Status::Code::kNotFound);
  EXPECT_NE(missing.message().find("missing.toml"), std::string::npos);

  // A value the option refuses stops the program like the same bad flag would.
  EXPECT_NE(Parse({"--config", Write("slots = 500\n")}), std::nullopt);
  EXPECT_EQ(std::getenv("TEST_CFG_SLOTS"), nullptr);
}

}  // namespace
}  // namespace manifold
