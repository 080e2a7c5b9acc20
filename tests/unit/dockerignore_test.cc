#include "common/dockerignore.h"

#include <gtest/gtest.h>

namespace manifold {
namespace {

DockerIgnore Parse(const char* text) {
  Result<DockerIgnore> ignore = DockerIgnore::Parse(text);
  EXPECT_TRUE(ignore.ok()) << ignore.status().message();
  return ignore.ok() ? *ignore : DockerIgnore();
}

TEST(DockerIgnoreTest, EmptyAndCommentsExcludeNothing) {
  DockerIgnore ignore = Parse("\n# a comment\n   \n");
  EXPECT_TRUE(ignore.empty());
  EXPECT_FALSE(ignore.Excluded("anything"));
}

TEST(DockerIgnoreTest, DirectoryPatternCoversItsContents) {
  DockerIgnore ignore = Parse("node_modules\n/build/\n");
  EXPECT_TRUE(ignore.Excluded("node_modules"));
  EXPECT_TRUE(ignore.Excluded("node_modules/x/y.js"));
  EXPECT_TRUE(ignore.Excluded("build/out.o"));        // leading and trailing '/' are cleaned
  EXPECT_FALSE(ignore.Excluded("src/node_modules"));  // patterns are anchored at the root
  EXPECT_FALSE(ignore.Excluded("builder"));
}

TEST(DockerIgnoreTest, StarQuestionAndClasses) {
  DockerIgnore ignore = Parse("*.log\ntmp?\ndata/[ab]*.csv\n");
  EXPECT_TRUE(ignore.Excluded("debug.log"));
  EXPECT_FALSE(ignore.Excluded("logs/debug.log"));  // '*' does not cross '/'
  EXPECT_TRUE(ignore.Excluded("tmp1"));
  EXPECT_FALSE(ignore.Excluded("tmp12"));
  EXPECT_TRUE(ignore.Excluded("data/a1.csv"));
  EXPECT_FALSE(ignore.Excluded("data/c1.csv"));
}

TEST(DockerIgnoreTest, DoubleStarMatchesAnyDepth) {
  DockerIgnore ignore = Parse("**/*.pyc\ndocs/**/draft.md\n");
  EXPECT_TRUE(ignore.Excluded("x.pyc"));
  EXPECT_TRUE(ignore.Excluded("a/b/c/x.pyc"));
  EXPECT_TRUE(ignore.Excluded("docs/draft.md"));
  EXPECT_TRUE(ignore.Excluded("docs/a/b/draft.md"));
  EXPECT_FALSE(ignore.Excluded("src/draft.md"));
}

TEST(DockerIgnoreTest, ExceptionsAndLastMatchWins) {
  DockerIgnore ignore = Parse("*.md\n!README.md\nREADME.md\n!docs\n");
  EXPECT_TRUE(ignore.Excluded("CHANGES.md"));
  EXPECT_TRUE(ignore.Excluded("README.md"));  // excluded again by the last line
  DockerIgnore keep = Parse("docs\n!docs/keep.md\n");
  EXPECT_TRUE(keep.Excluded("docs/other.md"));
  EXPECT_FALSE(keep.Excluded("docs/keep.md"));
  EXPECT_TRUE(keep.MayReincludeUnder("docs"));
  EXPECT_FALSE(keep.MayReincludeUnder("src"));
}

TEST(DockerIgnoreTest, BadPatternNamesTheLine) {
  Result<DockerIgnore> bad = DockerIgnore::Parse("ok\n[abc\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("line 2"), std::string::npos) << bad.status().message();
}

}  // namespace
}  // namespace manifold
