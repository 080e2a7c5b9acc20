// The source and revision annotations `manifold build` reads from git: remote URLs as a
// reader of the image can open them, and "-dirty" only for changes to what is built, each
// checked against real repositories made with the git binary in a temp dir.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cli/git_source.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace manifold {
namespace {

using std::chrono::seconds;
using test::CommandResult;

TEST(SourceUrl, HttpsStaysWithoutCredentials) {
  EXPECT_EQ(SourceUrl("https://ci:s3cret@git.example.com/team/app.git"),
            "https://git.example.com/team/app.git");
  EXPECT_EQ(SourceUrl("http://git.lab:8080/app"), "http://git.lab:8080/app");
}

TEST(SourceUrl, SshAndScpLikeRemotesBecomeTheHttpsUrlOfTheRepository) {
  EXPECT_EQ(SourceUrl("git@github.com:org/app.git"), "https://github.com/org/app");
  EXPECT_EQ(SourceUrl("github.com:org/app"), "https://github.com/org/app");
  EXPECT_EQ(SourceUrl("ssh://git@git.example.com:2222/team/app.git"),
            "https://git.example.com/team/app");
  EXPECT_EQ(SourceUrl("git+ssh://git@git.example.com/team/app.git/"),
            "https://git.example.com/team/app");
  EXPECT_EQ(SourceUrl("git://git.kernel.org/pub/scm/git/git.git"),
            "https://git.kernel.org/pub/scm/git/git");
  EXPECT_EQ(SourceUrl("ssh://git@[fd00::1]:22/app.git"), "https://[fd00::1]/app");
  EXPECT_EQ(SourceUrl("git@host.example:/srv/git/app.git\n"), "https://host.example/srv/git/app");
}

TEST(SourceUrl, LocalPathsAndOtherTransportsGiveNoSource) {
  for (const char* remote : {"/srv/git/app.git", "../app", "./app:v2", "app", "file:///srv/app.git",
                             "ext::ssh -p 2222 host %S app", "ssh://host", "git@host:", "",
                             "[fd00::1]:app.git", "C:\\repos\\app"}) {
    EXPECT_EQ(SourceUrl(remote), "") << remote;
  }
}

// A repository in a temp dir with one commit of ctx/Dockerfile, ctx/src/main.c and
// docs/README.
class GitRepository : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(root() + "/ctx/src");
    std::filesystem::create_directories(root() + "/docs");
    Write("ctx/Dockerfile", "FROM busybox\nCOPY src /src\n");
    Write("ctx/src/main.c", "int main() { return 0; }\n");
    Write("docs/README", "about\n");
    Git({"init", "-q"});
    Git({"add", "-A"});
    Git({"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "initial"});
    CommandResult head = RunGit({"rev-parse", "HEAD"});
    ASSERT_EQ(head.exit_code, 0) << head.output;
    commit_ = head.output.substr(0, 40);
  }

  std::string root() const { return dir_.path() + "/repo"; }
  void Write(const std::string& path, const std::string& text) {
    std::ofstream(root() + "/" + path) << text;
  }
  CommandResult RunGit(std::vector<std::string> args) {
    args.insert(args.begin(), {"git", "-C", root()});
    return test::RunCommand(args, seconds(30));
  }
  void Git(const std::vector<std::string>& args) {
    CommandResult r = RunGit(args);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  test::TempDir dir_{"manifold-git-source"};
  std::string commit_;
};

TEST_F(GitRepository, ALocalPathOriginGivesNoSourceAndAnScpLikeOneItsHttpsUrl) {
  Git({"remote", "add", "origin", dir_.path() + "/upstream.git"});
  GitSource source = DetectGitSource(root() + "/ctx");
  EXPECT_EQ(source.url, "");
  EXPECT_EQ(source.revision, commit_);

  Git({"remote", "set-url", "origin", "git@github.com:org/app.git"});
  EXPECT_EQ(DetectGitSource(root() + "/ctx").url, "https://github.com/org/app");
}

TEST_F(GitRepository, OnlyChangesToTheContextOrTheDockerfileMakeTheRevisionDirty) {
  const std::string context = root() + "/ctx/src";
  const std::string dockerfile = root() + "/ctx/Dockerfile";
  // Outside the context: an untracked file at the top and a changed one in docs/.
  Write("notes.txt", "scratch\n");
  Write("docs/README", "changed\n");
  EXPECT_EQ(DetectGitSource(context, dockerfile).revision, commit_);
  // The whole work tree is the context of a build at its top.
  EXPECT_EQ(DetectGitSource(root()).revision, commit_ + "-dirty");
  Git({"checkout", "-q", "--", "docs/README"});
  std::filesystem::remove(root() + "/notes.txt");

  // The Dockerfile, outside the context, is built too.
  Write("ctx/Dockerfile", "FROM busybox\n");
  EXPECT_EQ(DetectGitSource(context, dockerfile).revision, commit_ + "-dirty");
  EXPECT_EQ(DetectGitSource(context, "-").revision, commit_);
  Git({"checkout", "-q", "--", "ctx/Dockerfile"});

  // An untracked file in the context.
  Write("ctx/src/new.c", "\n");
  EXPECT_EQ(DetectGitSource(context, dockerfile).revision, commit_ + "-dirty");
  std::filesystem::remove(root() + "/ctx/src/new.c");
  EXPECT_EQ(DetectGitSource(context, dockerfile).revision, commit_);

  // A Dockerfile outside the repository does not count, and does not hide the context's
  // changes.
  test::TempDir elsewhere("manifold-git-elsewhere");
  std::ofstream(elsewhere.path() + "/Dockerfile") << "FROM busybox\n";
  EXPECT_EQ(DetectGitSource(context, elsewhere.path() + "/Dockerfile").revision, commit_);
  Write("ctx/src/main.c", "int main() { return 1; }\n");
  EXPECT_EQ(DetectGitSource(context, elsewhere.path() + "/Dockerfile").revision,
            commit_ + "-dirty");
}

}  // namespace
}  // namespace manifold
