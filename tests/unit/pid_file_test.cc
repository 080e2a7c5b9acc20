// The coordinator's --pid-file on real files: it holds this process's id while the object
// lives, is removed after, and a file another process wrote over it is left alone.
#include "coordinator/pid_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/support/temp_dir.h"

namespace manifold {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(PidFileTest, HoldsThisProcessWhileItLivesAndLeavesAnothersFileAlone) {
  test::TempDir dir;
  const std::string path = dir.path() + "/coordinator.pid";
  {
    PidFile pid_file;
    ASSERT_TRUE(pid_file.Write(path).ok());
    EXPECT_EQ(ReadFile(path), std::to_string(getpid()) + "\n");
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
  }
  EXPECT_FALSE(std::filesystem::exists(path));

  {
    PidFile pid_file;
    ASSERT_TRUE(pid_file.Write(path).ok());
    std::ofstream(path, std::ios::trunc) << "1\n";  // a newer coordinator took the file
  }
  EXPECT_EQ(ReadFile(path), "1\n");
}

TEST(PidFileTest, MakesItsDirectoryAndNamesTheFlagWhenItCannot) {
  test::TempDir dir;
  {
    PidFile pid_file;  // a /run/manifold after a reboot
    ASSERT_TRUE(pid_file.Write(dir.path() + "/run/manifold/coordinator.pid").ok());
    EXPECT_EQ(ReadFile(dir.path() + "/run/manifold/coordinator.pid"),
              std::to_string(getpid()) + "\n");
  }
  std::ofstream(dir.path() + "/file") << "not a directory\n";
  const std::string path = dir.path() + "/file/coordinator.pid";
  PidFile pid_file;
  Status written = pid_file.Write(path);
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.message(), "cannot write --pid-file " + path +
                                   ": Not a directory (choose a path this user may "
                                   "write)");
}

}  // namespace
}  // namespace manifold
