#include "common/digest.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "tests/support/temp_dir.h"

namespace manifold {
namespace {

// FIPS 180-2 test vectors.
constexpr char kEmpty[] = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kAbc[] = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

TEST(DigestTest, KnownVectors) {
  EXPECT_EQ(Sha256Digest(""), kEmpty);
  EXPECT_EQ(Sha256Digest("abc"), kAbc);
  EXPECT_EQ(Sha256Digest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "sha256:248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(DigestTest, IncrementalEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 100000; ++i) data.push_back(static_cast<char>(i * 31 + 7));
  Sha256 hasher;
  size_t offset = 0;
  for (size_t piece : {0, 1, 63, 64, 65, 1000, 4096}) {
    hasher.Update(data.data() + offset, piece);
    offset += piece;
  }
  hasher.Update(std::string_view(data).substr(offset));
  EXPECT_EQ(hasher.Finish(), Sha256Digest(data));
}

TEST(DigestTest, IncrementalOfNothingIsEmptyDigest) {
  Sha256 hasher;
  EXPECT_EQ(hasher.Finish(), kEmpty);
}

TEST(DigestTest, FileDigestMatchesBytes) {
  test::TempDir dir;
  const std::string path = dir.path() + "/file";
  // Larger than the streaming buffer, so the file is read in several pieces.
  std::string data(3 * (1 << 20) + 17, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i % 251);
  {
    std::ofstream out(path, std::ios::binary);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
  }
  Result<std::string> digest = Sha256FileDigest(path);
  ASSERT_TRUE(digest.ok()) << digest.status().message();
  EXPECT_EQ(*digest, Sha256Digest(data));
}

TEST(DigestTest, FileDigestOfEmptyFile) {
  test::TempDir dir;
  const std::string path = dir.path() + "/file";
  std::ofstream(path, std::ios::binary).close();
  Result<std::string> digest = Sha256FileDigest(path);
  ASSERT_TRUE(digest.ok()) << digest.status().message();
  EXPECT_EQ(*digest, kEmpty);
}

TEST(DigestTest, FileDigestOfMissingFileIsNotFound) {
  Result<std::string> digest = Sha256FileDigest("/nonexistent/manifold/file");
  ASSERT_FALSE(digest.ok());
  EXPECT_EQ(digest.status().code(), Status::Code::kNotFound);
  EXPECT_NE(digest.status().message().find("/nonexistent/manifold/file"), std::string::npos);
}

TEST(DigestTest, IsValidDigest) {
  EXPECT_TRUE(IsValidDigest(kEmpty));
  EXPECT_TRUE(IsValidDigest(kAbc));
  const std::string hex(64, 'a');
  EXPECT_TRUE(IsValidDigest("sha256:" + hex));
  EXPECT_FALSE(IsValidDigest(""));
  EXPECT_FALSE(IsValidDigest("sha256:"));
  EXPECT_FALSE(IsValidDigest(hex));                               // no algorithm
  EXPECT_FALSE(IsValidDigest("sha256:" + hex.substr(1)));         // 63 digits
  EXPECT_FALSE(IsValidDigest("sha256:" + hex + "a"));             // 65 digits
  EXPECT_FALSE(IsValidDigest("sha256:" + std::string(64, 'A')));  // uppercase
  EXPECT_FALSE(IsValidDigest("sha256:" + std::string(63, 'a') + "g"));
  EXPECT_FALSE(IsValidDigest("sha512:" + hex));
  EXPECT_FALSE(IsValidDigest("SHA256:" + hex));
  EXPECT_FALSE(IsValidDigest(" sha256:" + hex.substr(1)));
}

TEST(DigestTest, DigestHex) {
  EXPECT_EQ(DigestHex(kAbc), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(DigestHex(Sha256Digest("x")), Sha256Digest("x").substr(7));
}

}  // namespace
}  // namespace manifold
