// Cache mounts: the artifact's rules (its manifest, the TTL, the size bound, a pulled
// archive treated as hostile) and the agent's per-(repository, platform) directories,
// which a pass never removes while a job holds them.
#include "agent/cache_mounts.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "agent/cache_mounts_artifact.h"
#include "common/digest.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_image.h"

namespace manifold {
namespace {

namespace fs = std::filesystem;

const Platform kArm64{"linux", "arm64", ""};

// TarWithOneFile's archive with its one entry's type changed (the checksum made again).
std::string WithType(std::string tar, char type) {
  tar[156] = type;
  tar.replace(148, 8, "        ");
  unsigned sum = 0;
  for (size_t i = 0; i < 512; ++i) sum += static_cast<unsigned char>(tar[i]);
  char field[8];
  snprintf(field, sizeof field, "%06o", sum);
  tar.replace(148, 7, std::string(field, 6) + '\0');
  return tar;
}

TEST(CacheMountsArtifactTest, AnArtifactOlderThanTheTtlIsNotUsed) {
  Descriptor config = DescribeBlob(kCacheMountsConfig, "{}");
  Descriptor layer = DescribeBlob(kCacheMountsLayer, "tar");
  const int64_t made = 1'800'000'000;
  Result<CacheMountsManifest> parsed =
      ParseCacheMountsManifest(MakeCacheMountsManifest(config, layer, made));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->created, made);
  EXPECT_EQ(parsed->layer.digest, layer.digest);
  EXPECT_EQ(parsed->layer.size, 3);

  EXPECT_TRUE(WithinTtl(made, made + 3600, 3600));
  EXPECT_FALSE(WithinTtl(made, made + 3601, 3600));
  EXPECT_TRUE(WithinTtl(made, made + 10 * 365 * 86400, 0)) << "0 is no limit";
}

TEST(CacheMountsArtifactTest, AManifestOfAnotherKindIsRefused) {
  Descriptor config = DescribeBlob(kCacheMountsConfig, "{}");
  Descriptor layer = DescribeBlob(kCacheMountsLayer, "tar");
  std::string good = MakeCacheMountsManifest(config, layer, 1'800'000'000);
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string bytes = good;
    bytes.replace(bytes.find(from), from.size(), to);
    return bytes;
  };
  for (const std::string& bad :
       {std::string("not json"),
        replaced(std::string(kCacheMountsConfig), std::string(kOciConfig)),  // an image
        replaced(std::string(kCacheMountsLayer), std::string(kOciLayerTarGzip)),
        replaced("org.opencontainers.image.created", "org.example.other")}) {
    EXPECT_FALSE(ParseCacheMountsManifest(bad).ok()) << bad;
  }
}

TEST(CacheMountsArtifactTest, APulledArchiveThatEscapesHoldsADeviceOrIsTooLargeLeavesNothing) {
  test::TempDir dir("cache-mounts");
  const std::string into = dir.path() + "/tmp";
  struct Case {
    std::string what;
    std::string archive;
    uint64_t max_bytes;
  };
  for (const Case& c : {
           Case{"a path outside", test::TarWithOneFile("../escaped", "x"), 1 << 20},
           Case{"a device", WithType(test::TarWithOneFile("buildah-cache/dev", ""), '3'), 1 << 20},
           Case{"a fifo", WithType(test::TarWithOneFile("buildah-cache/fifo", ""), '6'), 1 << 20},
           Case{"more file data than the bound",
                test::TarWithOneFile("buildah-cache/big", std::string(4096, 'x')), 1024},
       }) {
    Status unpacked = UnpackCacheMounts(c.archive, into, c.max_bytes);
    EXPECT_FALSE(unpacked.ok()) << c.what;
    EXPECT_FALSE(fs::exists(into)) << c.what << ": something was left";
    EXPECT_FALSE(fs::exists(dir.path() + "/escaped")) << c.what;
  }
  // A well-formed one is unpacked.
  ASSERT_TRUE(UnpackCacheMounts(test::TarWithOneFile("buildah-cache/ok", "yes"), into, 1024).ok());
  EXPECT_TRUE(fs::exists(into + "/buildah-cache/ok"));
}

TEST(CacheMountsArtifactTest, PackingTakesBuildahsCacheOnlyAndStopsAtTheBound) {
  test::TempDir dir("cache-mounts");
  // Nothing cached yet (no build used a cache mount, or they left only directories): there
  // is no artifact to push.
  fs::create_directories(dir.path() + "/buildah-cache/empty");
  std::ofstream(dir.path() + "/buildah123-scratch") << "a build's own temporary file";
  EXPECT_FALSE(HoldsCacheMounts(dir.path()));
  fs::create_directories(dir.path() + "/buildah-cache/npm");
  std::ofstream(dir.path() + "/buildah-cache/npm/index") << "cached";
  std::ofstream(dir.path() + "/buildah123-scratch") << "a build's own temporary file";
  EXPECT_TRUE(HoldsCacheMounts(dir.path()));
  Result<std::string> packed = PackCacheMounts(dir.path(), 1 << 20);
  ASSERT_TRUE(packed.ok()) << packed.status().message();
  EXPECT_NE(packed->find("buildah-cache/npm/index"), std::string::npos);
  EXPECT_EQ(packed->find("scratch"), std::string::npos);

  Result<std::string> bounded = PackCacheMounts(dir.path(), 1024);
  ASSERT_FALSE(bounded.ok());
  EXPECT_EQ(bounded.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(bounded.status().message().find("--cache-mounts-max-bytes"), std::string::npos)
      << bounded.status().message();
}

TEST(CacheMountDirsTest, EachRepositoryAndPlatformHasItsOwnAndAHeldOneIsNeverRemoved) {
  test::TempDir dir("cache-mounts");
  CacheMounts mounts(CacheMountsOptions{dir.path(), 1 << 20, {}, nullptr});
  std::vector<std::string> said;
  auto say = [&](const std::string& line) { said.push_back(line); };
  auto app = mounts.Begin("127.0.0.1:5000/app", kArm64, {}, say);
  auto other = mounts.Begin("127.0.0.1:5000/other", kArm64, {}, say);
  auto amd64 = mounts.Begin("127.0.0.1:5000/app", Platform{"linux", "amd64", ""}, {}, say);
  EXPECT_NE(app->tmp_dir(), other->tmp_dir());
  EXPECT_NE(app->tmp_dir(), amd64->tmp_dir());
  EXPECT_TRUE(fs::is_directory(app->tmp_dir()));
  EXPECT_EQ(app->tmp_dir().rfind(dir.path() + "/", 0), 0u);
  EXPECT_TRUE(said.empty()) << "nothing to pull from, nothing said";
  const std::string app_dir = app->tmp_dir();
  other.reset();
  amd64.reset();

  std::set<std::string> in_use;
  std::vector<StoredImage> listed = mounts.List(&in_use);
  ASSERT_EQ(listed.size(), 3u);
  ASSERT_EQ(in_use.size(), 1u);
  for (const StoredImage& entry : listed) {
    EXPECT_TRUE(CacheMounts::IsEntry(entry.id));
    EXPECT_GT(entry.last_used, 0);
    if (in_use.count(entry.id) != 0) {
      EXPECT_FALSE(mounts.Remove(entry.id)) << "held by a running job";
      EXPECT_TRUE(fs::is_directory(app_dir));
    } else {
      EXPECT_TRUE(mounts.Remove(entry.id));
    }
  }
  EXPECT_EQ(mounts.List(&in_use).size(), 1u);
  app.reset();
  in_use.clear();
  listed = mounts.List(&in_use);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_TRUE(in_use.empty());
  EXPECT_TRUE(mounts.Remove(listed[0].id));
  EXPECT_FALSE(fs::exists(app_dir));
  EXPECT_FALSE(mounts.Remove("cache-mounts/../../etc")) << "only its own directories";
}

}  // namespace
}  // namespace manifold
