// Config files: the file reaches the options through their environment variables, so a
// flag beats the environment, which beats the file, which beats the default; and every
// mistake in a file (real files in a temporary directory) is refused with its line and fix.
#include "common/config_file.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <CLI/CLI.hpp>
#include <fstream>

#include "tests/support/temp_dir.h"

namespace manifold {
namespace {

constexpr const char* kVariables[] = {"TEST_CFG_NAME", "TEST_CFG_SLOTS", "TEST_CFG_LABELS",
                                      "TEST_CFG_FAST", "TEST_CFG_RATIO", kConfigEnv};

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : kVariables) unsetenv(name);
    app_.add_option("--name", name_)->envname("TEST_CFG_NAME");
    app_.add_option("--slots", slots_)->envname("TEST_CFG_SLOTS")->check(CLI::Range(1, 64));
    app_.add_option("--label", labels_)->envname("TEST_CFG_LABELS")->delimiter(',');
    app_.add_flag("--fast", fast_)->envname("TEST_CFG_FAST");
    app_.add_option("--ratio", ratio_)->envname("TEST_CFG_RATIO");
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
  double ratio_ = 1;
  std::string unbound_;
};

TEST_F(ConfigFileTest, TheFileSetsOptionsAndLeavesNoVariablesBehind) {
  std::string path = Write(
      "# a comment\n"
      "name = \"from file\"\n"
      "slots = 8\n"
      "label = [\"rack=4\", \"zone=a\"]\n"
      "fast = true\n"
      "ratio = 0.25\n");
  EXPECT_EQ(Parse({"--config", path}), std::nullopt);
  EXPECT_EQ(name_, "from file");
  EXPECT_EQ(slots_, 8);
  EXPECT_EQ(labels_, (std::vector<std::string>{"rack=4", "zone=a"}));
  EXPECT_TRUE(fast_);
  EXPECT_EQ(ratio_, 0.25);
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

class ConfigFileErrorTest : public ConfigFileTest {
 protected:
  // The message LoadConfigFile fails with for a file of `text` ("ok" if it does not), which
  // must then have set no variable.
  std::string Error(const std::string& text) {
    const std::string path = Write(text);
    std::vector<std::string> set;
    std::vector<std::string> args = {"manifold-test", "--config=" + path};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    Status s = LoadConfigFile(app_, static_cast<int>(argv.size()), argv.data(), &set);
    if (s.ok()) return "ok";
    EXPECT_TRUE(set.empty());
    for (const char* name : kVariables) EXPECT_EQ(std::getenv(name), nullptr) << name;
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
    return s.message();
  }
  // "config file PATH, line LINE: " and `message`, as LoadConfigFile words its errors.
  std::string At(int line, const std::string& message) {
    return "config file " + dir_.path() + "/manifold.toml, line " + std::to_string(line) + ": " +
           message;
  }
};

TEST_F(ConfigFileErrorTest, InvalidTomlSaysWhatToWriteInstead) {
  EXPECT_EQ(Error("slots = 2\nname = on\n"),
            At(2,
               "not valid TOML (Error while parsing value: could not determine value type); "
               "`on` is not a TOML value; quote strings: name = \"on\""));
  EXPECT_EQ(Error("name = tcp://host:7081  # the coordinator\n"),
            At(1,
               "not valid TOML (Error while parsing boolean: expected 'true', saw 'tc'); "
               "`tcp://host:7081` is not a TOML value; quote strings: name = "
               "\"tcp://host:7081\""));
  EXPECT_EQ(Error("fast = yes\n"),
            At(1,
               "not valid TOML (Error while parsing value: could not determine value type); "
               "booleans are true or false: fast = true"));
  EXPECT_EQ(Error("fast = False\n"),
            At(1,
               "not valid TOML (Error while parsing boolean: expected 'false', saw 'F'); "
               "booleans are true or false: fast = false"));
  std::string unterminated = Error("name = \"a\nslots = 2\n");
  EXPECT_EQ(unterminated.rfind(At(1, "not valid TOML ("), 0), 0u) << unterminated;
  EXPECT_NE(unterminated.find("); write `name = value` lines: strings in double quotes"),
            std::string::npos)
      << unterminated;
}

TEST_F(ConfigFileErrorTest, ANameSetTwiceIsAnErrorEvenWithTheSameValue) {
  EXPECT_EQ(Error("name = \"a\"\nslots = 2\n  name = \"b\"\n"),
            At(3, "`name` is set twice (first on line 1); keep one of them"));
  EXPECT_EQ(Error("label = [\"a\"]\nlabel = [\"a\"]\n"),
            At(2, "`label` is set twice (first on line 1); keep one of them"));
}

TEST_F(ConfigFileErrorTest, UnknownNamesGetTheClosestOptionWhenOneIsClose) {
  EXPECT_EQ(Error("nmae = \"x\"\n"),
            At(1,
               "`nmae` is not an option of this program; did you mean `name`? (--help lists "
               "the options)"));
  auto unknown = [&](int line, const std::string& name, const std::string& meant) {
    return At(line, "`" + name + "` is not an option of this program" +
                        (meant.empty() ? "" : "; did you mean `" + meant + "`?") +
                        " (--help lists the options)");
  };
  EXPECT_EQ(Error("name = \"x\"\nslot = 2\n"), unknown(2, "slot", "slots"));
  EXPECT_EQ(Error("labels = [\"a\"]\n"), unknown(1, "labels", "label"));
  EXPECT_EQ(Error("colour = 1\n"), unknown(1, "colour", ""));  // nothing close
  // Several mistakes: the first in the file is reported, whatever the names' order.
  EXPECT_EQ(Error("slots = 2\nzz = 1\naa = 1\n"), unknown(2, "zz", ""));

  EXPECT_EQ(Error("unbound = \"x\"\n"),
            At(1, "`unbound` cannot be set in a config file; give it as a flag: --unbound"));
  app_.add_option("--config")->envname(kConfigEnv);  // as ParseWithConfigFile adds it
  EXPECT_EQ(Error("config = \"other.toml\"\n"),
            At(1, "`config` cannot be set in a config file; give it as a flag: --config"));
}

TEST_F(ConfigFileErrorTest, TablesAndListsWhereOneValueGoesAreRefused) {
  EXPECT_EQ(Error("slots = 2\n[agent]\nname = \"x\"\n"),
            At(2,
               "[agent]: tables are not used; write `name = value` lines at the top of the "
               "file, named like the flags"));
  EXPECT_EQ(Error("name = { first = \"a\" }\n"),
            At(1,
               "`name` is a table; tables are not used: write `name = value` lines at the top "
               "of the file, named like the flags"));
  EXPECT_EQ(Error("name = [\"a\", \"b\"]\n"),
            At(1, "`name` takes one value, not a list; write name = \"a\""));
  EXPECT_EQ(Error("slots = [4]\n"), At(1, "`slots` takes one value, not a list; write slots = 4"));
  EXPECT_EQ(Error("label = [\"rack=4,zone=a\"]\n"),
            At(1,
               "`label`: \"rack=4,zone=a\" holds ',', which separates label's values; give "
               "each value as its own list item"));
  EXPECT_EQ(Error("label = [[\"a\"]]\n"),
            At(1,
               "`label`'s list holds [ \"a\" ]; list strings, numbers or booleans: label = "
               "[\"a\", \"b\"]"));
  EXPECT_EQ(Error("name = 2024-05-01\n"),
            At(1, "`name` = 2024-05-01 is a TOML date or time; quote it: name = \"2024-05-01\""));
}

TEST_F(ConfigFileErrorTest, AMissingFileOrABadValueStopsTheProgram) {
  std::vector<std::string> set;
  std::string missing_path = dir_.path() + "/missing.toml";
  std::vector<std::string> args = {"manifold-test", "--config", missing_path};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  Status missing = LoadConfigFile(app_, static_cast<int>(argv.size()), argv.data(), &set);
  EXPECT_EQ(missing.code(), Status::Code::kNotFound);
  EXPECT_EQ(missing.message(), "cannot read the config file " + missing_path +
                                   ": No such file or directory (--config or MANIFOLD_CONFIG "
                                   "names it)");

  // A value the option refuses stops the program like the same bad flag would.
  EXPECT_NE(Parse({"--config", Write("slots = 500\n")}), std::nullopt);
  EXPECT_EQ(std::getenv("TEST_CFG_SLOTS"), nullptr);
}

}  // namespace
}  // namespace manifold
