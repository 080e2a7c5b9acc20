#include "agent/secret_files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "tests/support/temp_dir.h"

namespace manifold {
namespace {

namespace fs = std::filesystem;

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

mode_t Mode(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(SecretFilesTest, PrivateFilesThatVanishWithTheObject) {
  test::TempDir parent("manifold-secret-files");
  std::string dir;
  std::map<std::string, std::string> files;
  {
    Result<SecretFiles> written =
        SecretFiles::Write({{"npmrc", "token=abc"}, {"../../etc/passwd", std::string("\0x", 2)}},
                           parent.path(), "/nonexistent");
    ASSERT_TRUE(written.ok()) << written.status().message();
    dir = written->dir();
    files = written->files();
    EXPECT_EQ(fs::path(dir).parent_path(), fs::path(parent.path()));
    EXPECT_EQ(Mode(dir), 0700u);
    ASSERT_EQ(files.size(), 2u);
    EXPECT_EQ(Read(files.at("npmrc")), "token=abc");
    EXPECT_EQ(Read(files.at("../../etc/passwd")), std::string("\0x", 2));
    for (const auto& [id, path] : files) {
      EXPECT_EQ(fs::path(path).parent_path(), fs::path(dir)) << id;  // ids never name files
      EXPECT_EQ(Mode(path), 0600u) << id;
    }
    SecretFiles moved = std::move(*written);
    EXPECT_TRUE(fs::exists(dir));
    EXPECT_EQ(moved.files(), files);
  }
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(fs::is_empty(parent.path()));
}

TEST(SecretFilesTest, FallsBackWhenThereIsNoMemoryFileSystemAndWritesNothingForNone) {
  test::TempDir fallback("manifold-secret-files");
  Result<SecretFiles> none = SecretFiles::Write({}, "/nonexistent", fallback.path());
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->dir().empty());
  EXPECT_TRUE(fs::is_empty(fallback.path()));

  Result<SecretFiles> one = SecretFiles::Write({{"k", "v"}}, "/nonexistent", fallback.path());
  ASSERT_TRUE(one.ok()) << one.status().message();
  EXPECT_EQ(fs::path(one->dir()).parent_path(), fs::path(fallback.path()));
}

TEST(SecretFilesTest, AnUnwritablePlaceIsAClearError) {
  Result<SecretFiles> failed = SecretFiles::Write({{"k", "hunter2"}}, "/proc", "/proc");
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("cannot create a private directory"), std::string::npos)
      << failed.status().message();
  EXPECT_EQ(failed.status().message().find("hunter2"), std::string::npos);
}

}  // namespace
}  // namespace manifold
