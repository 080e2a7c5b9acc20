#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "cli/build_args.h"
#include "common/validate.h"
#include "tests/support/temp_dir.h"

namespace manifold {
namespace {

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(BuildArgs, NameEqualsValue) {
  auto args = ParseBuildArgs({"A=1", "B=", "C=x=y", "D= spaced "}, FakeEnv({}));
  ASSERT_TRUE(args.ok()) << args.status().message();
  EXPECT_EQ(*args, (std::map<std::string, std::string>{
                       {"A", "1"}, {"B", ""}, {"C", "x=y"}, {"D", " spaced "}}));
}

TEST(BuildArgs, NameAloneTakesTheEnvironmentValue) {
  auto args = ParseBuildArgs({"HTTP_PROXY", "EMPTY"},
                             FakeEnv({{"HTTP_PROXY", "http://proxy:3128"}, {"EMPTY", ""}}));
  ASSERT_TRUE(args.ok()) << args.status().message();
  EXPECT_EQ(*args, (std::map<std::string, std::string>{{"HTTP_PROXY", "http://proxy:3128"},
                                                       {"EMPTY", ""}}));
}

TEST(BuildArgs, NameAloneMissingFromTheEnvironmentIsLeftOut) {
  auto args = ParseBuildArgs({"UNSET", "KEPT=1", "KEPT"}, FakeEnv({}));
  ASSERT_TRUE(args.ok()) << args.status().message();
  // As buildx: an unset K sends nothing and does not erase an earlier K=V.
  EXPECT_EQ(*args, (std::map<std::string, std::string>{{"KEPT", "1"}}));
}

TEST(BuildArgs, LaterValueWins) {
  auto args = ParseBuildArgs({"A=1", "A=2", "B=1", "B"}, FakeEnv({{"B", "env"}}));
  ASSERT_TRUE(args.ok()) << args.status().message();
  EXPECT_EQ(*args, (std::map<std::string, std::string>{{"A", "2"}, {"B", "env"}}));
}

TEST(BuildArgs, EmptyNameIsRejected) {
  for (const char* bad : {"=V", "", "="}) {
    auto args = ParseBuildArgs({"A=1", bad}, FakeEnv({}));
    ASSERT_FALSE(args.ok()) << bad;
    EXPECT_EQ(args.status().code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(args.status().message(), std::string("invalid --build-arg \"") + bad +
                                           "\": the name is empty; use NAME=VALUE or NAME");
  }
}

TEST(BuildArgs, NameOutsideTheGrammarIsRejected) {
  for (const char* bad : {"1X=V", "A-B=1", "A B", "K\xc3\xa9=1"}) {
    auto args = ParseBuildArgs({bad}, FakeEnv({}));
    ASSERT_FALSE(args.ok()) << bad;
    EXPECT_EQ(args.status().message().rfind(
                  std::string("invalid --build-arg \"") + bad + "\": the name", 0),
              0u)
        << args.status().message();
  }
  EXPECT_TRUE(ParseBuildArgs({"_x=1", "Ab_9=2", std::string(255, 'a') + "=3"}, FakeEnv({})).ok());
  EXPECT_FALSE(ParseBuildArgs({std::string(256, 'a') + "=3"}, FakeEnv({})).ok());
}

TEST(BuildArgs, ProcessEnvironment) {
  ::setenv("MANIFOLD_CLI_TEST_ARG", "from env", 1);
  ::unsetenv("MANIFOLD_CLI_TEST_UNSET");
  auto args =
      ParseBuildArgs({"MANIFOLD_CLI_TEST_ARG", "MANIFOLD_CLI_TEST_UNSET"}, LookupProcessEnv);
  ASSERT_TRUE(args.ok());
  EXPECT_EQ(*args, (std::map<std::string, std::string>{{"MANIFOLD_CLI_TEST_ARG", "from env"}}));
}

TEST(Labels, KeyValueOrKeyAlone) {
  auto labels = ParseLabels({"a=1", "b=x=y", "c", "a=2", "d="});
  ASSERT_TRUE(labels.ok()) << labels.status().message();
  EXPECT_EQ(*labels,
            (std::map<std::string, std::string>{{"a", "2"}, {"b", "x=y"}, {"c", ""}, {"d", ""}}));
  for (const char* bad : {"=v", "", "a b=c", "tab\t=1"}) {
    auto rejected = ParseLabels({bad});
    ASSERT_FALSE(rejected.ok()) << bad;
    EXPECT_EQ(rejected.status().message().rfind(std::string("invalid --label \"") + bad, 0), 0u)
        << rejected.status().message();
  }
}

TEST(Annotations, BuildxForms) {
  auto parsed = ParseAnnotations({"org.opencontainers.image.title=app", "manifest:m=1",
                                  "index:org.opencontainers.image.source=https://x/y",
                                  "index,manifest:both=b", "empty=", "url=a=b:c"});
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->manifest,
            (std::map<std::string, std::string>{{"org.opencontainers.image.title", "app"},
                                                {"m", "1"},
                                                {"both", "b"},
                                                {"empty", ""},
                                                {"url", "a=b:c"}}));
  EXPECT_EQ(parsed->index, (std::map<std::string, std::string>{
                               {"org.opencontainers.image.source", "https://x/y"}, {"both", "b"}}));
}

TEST(Annotations, UnsupportedOrMalformedFormsAreRefused) {
  struct Case {
    std::string arg;
    std::string why;
  };
  for (const Case& c : std::vector<Case>{
           {"novalue", "use KEY=VALUE, manifest:KEY=VALUE or index:KEY=VALUE"},
           {"=v", "the key must be"},
           {"manifest[linux/amd64]:k=v", "per-platform annotations are not supported"},
           {"manifest-descriptor:k=v", "manifest-descriptor annotations are not supported"},
           {"index-descriptor:k=v", "index-descriptor annotations are not supported"},
           {"image:k=v", "unknown type \"image\"; use manifest: or index:"},
           {"a b=c", "the key must be"},
       }) {
    auto parsed = ParseAnnotations({c.arg});
    ASSERT_FALSE(parsed.ok()) << c.arg;
    EXPECT_EQ(parsed.status().code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(
        parsed.status().message().rfind("invalid --annotation \"" + c.arg + "\": " + c.why, 0), 0u)
        << parsed.status().message();
  }
}

TEST(Secrets, FromFilesAndTheEnvironmentAsBuildx) {
  test::TempDir dir("manifold-secrets");
  std::ofstream(dir.path() + "/npmrc") << "//registry/:_authToken=abc";
  std::ofstream(dir.path() + "/key") << std::string("\0binary\xff", 8);
  auto parsed = ParseSecrets(
      {"id=npmrc,src=" + dir.path() + "/npmrc", "type=file,id=key,source=" + dir.path() + "/key",
       "id=token,env=CI_TOKEN", "type=env,id=GITHUB_TOKEN"},
      FakeEnv({{"CI_TOKEN", "t0k"}, {"GITHUB_TOKEN", "ghp"}}));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(*parsed, (std::map<std::string, std::string>{{"npmrc", "//registry/:_authToken=abc"},
                                                         {"key", std::string("\0binary\xff", 8)},
                                                         {"token", "t0k"},
                                                         {"GITHUB_TOKEN", "ghp"}}));
}

TEST(Secrets, MistakesAreNamedWithoutTheBytes) {
  test::TempDir dir("manifold-secrets");
  const std::string file = dir.path() + "/s";
  std::ofstream(file) << "hunter2";
  std::ofstream(dir.path() + "/big") << std::string(kMaxSecretBytes + 1, 'x');
  struct Case {
    std::string arg;
    std::string why;
  };
  for (const Case& c : std::vector<Case>{
           {"src=" + file, "the id is missing"},
           {"id=../x,src=" + file, "the secret id \"../x\" must be"},
           {"id=s,src=" + dir.path() + "/absent", "cannot read " + dir.path() + "/absent"},
           {"id=s,env=NOT_SET", "the environment variable NOT_SET is not set"},
           {"id=s,src=" + file + ",env=X", "give src or env, not both"},
           {"id=s,type=ssh", "type must be file or env"},
           {"id=s,required=true", "unknown key \"required\""},
           {"id=s", "cannot read s"},
           {"id=big,src=" + dir.path() + "/big", "a build secret may be at most"},
       }) {
    auto parsed = ParseSecrets({c.arg}, FakeEnv({}));
    ASSERT_FALSE(parsed.ok()) << c.arg;
    EXPECT_NE(parsed.status().message().find(c.why), std::string::npos)
        << c.arg << ": " << parsed.status().message();
  }
  auto twice = ParseSecrets({"id=s,src=" + file, "id=s,src=" + file}, FakeEnv({}));
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("is given twice"), std::string::npos);
  EXPECT_EQ(twice.status().message().find("hunter2"), std::string::npos);
}

}  // namespace
}  // namespace manifold
