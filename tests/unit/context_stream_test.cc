// The streamed context path without a farm: the CLI's spool (packed and hashed in one
// pass into a nameless temp file) and the agent's extractor fed in small pieces, as a
// download delivers them, including one given up on because the digest did not match.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "cli/context_spool.h"
#include "common/digest.h"
#include "common/tar.h"
#include "tests/support/temp_dir.h"

namespace manifold {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Random (incompressible) bytes, as a context's build outputs or assets often are.
std::string RandomBytes(size_t size) {
  std::mt19937_64 random(42);
  std::string bytes(size, '\0');
  for (char& c : bytes) c = static_cast<char>(random());
  return bytes;
}

// A context of a few files, one larger than the writer's 1 MiB read chunk.
void MakeContext(const std::string& dir) {
  fs::create_directories(dir + "/src/deep");
  std::ofstream(dir + "/Dockerfile") << "FROM scratch\nCOPY . /\n";
  std::ofstream(dir + "/data.bin", std::ios::binary) << RandomBytes((3 << 20) + 123);
  std::ofstream(dir + "/src/deep/main.c") << "int main() { return 0; }\n";
  fs::create_symlink("src/deep", dir + "/link");
}

// The whole spooled archive, read back from the descriptor the upload streams from.
std::string ReadSpool(const ContextSpool& spool) {
  std::string bytes(spool.size(), '\0');
  EXPECT_EQ(pread(spool.fd(), bytes.data(), bytes.size(), 0), static_cast<ssize_t>(spool.size()));
  return bytes;
}

// A context in source_, its archive as WriteTarFromDirectory makes it, a TMPDIR in tmp_.
class ContextStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MakeContext(source_.path());
    ASSERT_TRUE(WriteTarFromDirectory(source_.path(), nullptr, &archive_).ok());
  }

  TempDir source_;
  TempDir tmp_;
  std::string archive_;
};

TEST_F(ContextStreamTest, SpoolHashesWhatItWritesAndLeavesNoFileBehind) {
  const TempDir& source = source_;
  const TempDir& tmp = tmp_;
  const std::string& archive = archive_;
  Result<ContextSpool> spool = ContextSpool::Pack(source.path(), nullptr, tmp.path(), 1ull << 30);
  ASSERT_TRUE(spool.ok()) << spool.status().message();
  EXPECT_EQ(spool->digest(), Sha256Digest(archive));
  EXPECT_EQ(spool->size(), archive.size());
  EXPECT_TRUE(ReadSpool(*spool) == archive);
  // Unlinked at once: a CLI killed during the upload leaves nothing in TMPDIR.
  EXPECT_TRUE(fs::is_empty(tmp.path()));
}

TEST_F(ContextStreamTest, SpoolPastTheLimitCountsTheSizeButStopsWriting) {
  Result<ContextSpool> spool = ContextSpool::Pack(source_.path(), nullptr, tmp_.path(), 1 << 20);
  ASSERT_TRUE(spool.ok()) << spool.status().message();
  EXPECT_EQ(spool->size(), archive_.size());  // so the error can say how large it is
  struct stat st;
  ASSERT_EQ(fstat(spool->fd(), &st), 0);
  EXPECT_LE(st.st_size, 1 << 20);
}

TEST_F(ContextStreamTest, ExtractsAStreamInSmallPieces) {
  const TempDir& source = source_;
  const TempDir& tmp = tmp_;
  Result<ContextSpool> spool = ContextSpool::Pack(source.path(), nullptr, tmp.path(), 1ull << 30);
  ASSERT_TRUE(spool.ok()) << spool.status().message();
  const std::string archive = ReadSpool(*spool);

  for (size_t piece : {size_t{511}, size_t{4099}, size_t{65537}}) {
    TempDir dest;
    const std::string out = dest.path() + "/context";
    TarExtractor extractor(out, ExtractLimits());
    Sha256 hash;
    for (size_t at = 0; at < archive.size(); at += piece) {
      std::string_view bytes = std::string_view(archive).substr(at, piece);
      hash.Update(bytes);
      Status written = extractor.Write(bytes);
      ASSERT_TRUE(written.ok()) << piece << ": " << written.message();
    }
    EXPECT_EQ(hash.Finish(), spool->digest());
    Status finished = extractor.Finish();
    ASSERT_TRUE(finished.ok()) << piece << ": " << finished.message();
    EXPECT_TRUE(ReadFile(out + "/data.bin") == ReadFile(source.path() + "/data.bin")) << piece;
    EXPECT_EQ(ReadFile(out + "/src/deep/main.c"), "int main() { return 0; }\n") << piece;
    EXPECT_EQ(fs::read_symlink(out + "/link").string(), "src/deep") << piece;
  }
}

TEST_F(ContextStreamTest, AStreamGivenUpOnLeavesNothingExtracted) {
  const TempDir& base = tmp_;
  const std::string& archive = archive_;

  // As the agent does when the digest does not match: every byte written, never finished.
  const std::string fresh = base.path() + "/fresh";
  {
    TarExtractor extractor(fresh, ExtractLimits());
    ASSERT_TRUE(extractor.Write(archive).ok());
    EXPECT_TRUE(fs::exists(fresh + "/data.bin"));
  }
  EXPECT_FALSE(fs::exists(fresh));

  // Into a directory that was there before: only what the extractor made goes.
  const std::string existing = base.path() + "/existing";
  fs::create_directories(existing);
  std::ofstream(existing + "/kept") << "mine";
  {
    TarExtractor extractor(existing, ExtractLimits());
    ASSERT_TRUE(extractor.Write(archive.substr(0, archive.size() / 2)).ok());
  }
  EXPECT_EQ(ReadFile(existing + "/kept"), "mine");
  EXPECT_EQ(std::distance(fs::directory_iterator(existing), fs::directory_iterator()), 1);
}

}  // namespace
}  // namespace manifold
