#include "common/layout.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/digest.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_image.h"

namespace manifold {
namespace {

using test::LayoutEntry;
using test::MakeTestImage;
using test::TempDir;
using test::TestImage;
using test::WriteTestLayout;

void WriteFile(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string BlobPath(const std::string& dir, const std::string& digest) {
  return dir + "/blobs/sha256/" + DigestHex(digest);
}

class LayoutTest : public ::testing::Test {
 protected:
  TempDir tmp_;
  const std::string dir_ = tmp_.path() + "/layout";
  const TestImage amd64_ = MakeTestImage({"linux", "amd64", ""}, "amd64 says hello\n");
  const TestImage arm64_ = MakeTestImage({"linux", "arm64", ""}, "arm64 says hello\n");
};

TEST_F(LayoutTest, OpensTheOnlyImage) {
  ASSERT_TRUE(WriteTestLayout(dir_, {{&amd64_, "latest"}}).ok());
  Result<OciLayoutImage> image = OpenLayoutImage(dir_);
  ASSERT_TRUE(image.ok()) << image.status().message();
  EXPECT_EQ(image->dir, dir_);
  EXPECT_EQ(image->descriptor.digest, amd64_.manifest.digest);
  EXPECT_EQ(image->descriptor.size, amd64_.manifest.size);
  EXPECT_EQ(image->descriptor.annotations.at(std::string(kRefNameAnnotation)), "latest");
  EXPECT_EQ(image->manifest_bytes, amd64_.manifest_bytes);
  EXPECT_EQ(image->manifest.media_type, kOciManifest);
  EXPECT_EQ(image->manifest.config, amd64_.config);
  ASSERT_EQ(image->manifest.layers.size(), 1u);
  EXPECT_EQ(image->manifest.layers[0], amd64_.layers[0]);

  // The same by its name.
  Result<OciLayoutImage> named = OpenLayoutImage(dir_, "latest");
  ASSERT_TRUE(named.ok()) << named.status().message();
  EXPECT_EQ(named->descriptor.digest, amd64_.manifest.digest);
}

TEST_F(LayoutTest, SelectsByRefNameAmongSeveral) {
  ASSERT_TRUE(WriteTestLayout(dir_, {{&amd64_, "amd"}, {&arm64_, "arm"}}).ok());
  Result<OciLayoutImage> arm = OpenLayoutImage(dir_, "arm");
  ASSERT_TRUE(arm.ok()) << arm.status().message();
  EXPECT_EQ(arm->descriptor.digest, arm64_.manifest.digest);

  Result<OciLayoutImage> ambiguous = OpenLayoutImage(dir_);
  ASSERT_FALSE(ambiguous.ok());
  EXPECT_NE(ambiguous.status().message().find("holds 2 images"), std::string::npos)
      << ambiguous.status().message();
  EXPECT_NE(ambiguous.status().message().find("amd, arm"), std::string::npos);

  Result<OciLayoutImage> missing = OpenLayoutImage(dir_, "riscv");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Status::Code::kNotFound);
  EXPECT_NE(missing.status().message().find("no image named \"riscv\""), std::string::npos);
  EXPECT_NE(missing.status().message().find("amd, arm"), std::string::npos);
}

TEST_F(LayoutTest, ReadsTheConfigPlatformThroughReadLayoutBlob) {
  ASSERT_TRUE(WriteTestLayout(dir_, {{&arm64_, "arm"}}).ok());
  Result<OciLayoutImage> image = OpenLayoutImage(dir_);
  ASSERT_TRUE(image.ok()) << image.status().message();
  Result<std::string> config =
      ReadLayoutBlob(dir_, image->manifest.config.digest, image->manifest.config.size);
  ASSERT_TRUE(config.ok()) << config.status().message();
  Result<Platform> platform = ParseImageConfigPlatform(*config);
  ASSERT_TRUE(platform.ok()) << platform.status().message();
  EXPECT_EQ(*platform, (Platform{"linux", "arm64", ""}));
}

TEST_F(LayoutTest, RejectsADirectoryThatIsNotALayout) {
  std::filesystem::create_directories(dir_);
  Result<OciLayoutImage> image = OpenLayoutImage(dir_);
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().code(), Status::Code::kNotFound);
  EXPECT_NE(image.status().message().find("not an OCI image layout"), std::string::npos);

  WriteFile(dir_ + "/oci-layout", R"({"imageLayoutVersion":"2.0.0"})");
  image = OpenLayoutImage(dir_);
  ASSERT_FALSE(image.ok());
  EXPECT_NE(image.status().message().find("version 2.0.0"), std::string::npos);

  WriteFile(dir_ + "/oci-layout", "{}");
  EXPECT_FALSE(OpenLayoutImage(dir_).ok());

  WriteFile(dir_ + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  image = OpenLayoutImage(dir_);  // no index.json
  ASSERT_FALSE(image.ok());
  EXPECT_NE(image.status().message().find("index.json"), std::string::npos);

  WriteFile(dir_ + "/index.json", R"({"schemaVersion":2,"manifests":[]})");
  image = OpenLayoutImage(dir_);
  ASSERT_FALSE(image.ok());
  EXPECT_NE(image.status().message().find("holds no images"), std::string::npos);

  WriteFile(dir_ + "/index.json", "{\"schemaVersion\":2,\"manifests\":[");
  image = OpenLayoutImage(dir_);
  ASSERT_FALSE(image.ok());
  EXPECT_NE(image.status().message().find("index.json"), std::string::npos);
}

TEST_F(LayoutTest, DetectsCorruptAndMissingBlobs) {
  ASSERT_TRUE(WriteTestLayout(dir_, {{&amd64_, "latest"}}).ok());

  // A layer that vanished.
  std::filesystem::remove(BlobPath(dir_, amd64_.layers[0].digest));
  Result<OciLayoutImage> image = OpenLayoutImage(dir_);
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().code(), Status::Code::kNotFound);
  EXPECT_NE(image.status().message().find("missing blob " + amd64_.layers[0].digest),
            std::string::npos)
      << image.status().message();

  // A layer of the wrong size.
  WriteFile(BlobPath(dir_, amd64_.layers[0].digest), "short");
  image = OpenLayoutImage(dir_);
  ASSERT_FALSE(image.ok());
  EXPECT_NE(image.status().message().find("5 bytes"), std::string::npos)
      << image.status().message();

  // A manifest whose bytes changed but whose size did not.
  std::string tampered = amd64_.manifest_bytes;
  tampered[tampered.size() - 2] = ' ';
  WriteFile(BlobPath(dir_, amd64_.manifest.digest), tampered);
  image = OpenLayoutImage(dir_);
  ASSERT_FALSE(image.ok());
  EXPECT_NE(image.status().message().find("corrupt"), std::string::npos)
      << image.status().message();
}

TEST_F(LayoutTest, RejectsIndexesAndForeignEntries) {
  ASSERT_TRUE(WriteTestLayout(dir_, {{&amd64_, "latest"}}).ok());
  std::string nested = R"({"schemaVersion":2,"manifests":[{"mediaType":")" +
                       std::string(kOciIndex) + R"(","digest":")" + amd64_.manifest.digest +
                       R"(","size":)" + std::to_string(amd64_.manifest.size) + "}]}";
  WriteFile(dir_ + "/index.json", nested);
  Result<OciLayoutImage> image = OpenLayoutImage(dir_);
  ASSERT_FALSE(image.ok());
  EXPECT_NE(image.status().message().find("is an image index"), std::string::npos);

  // index.json says Docker, the manifest says OCI.
  std::string mismatched = R"({"schemaVersion":2,"manifests":[{"mediaType":")" +
                           std::string(kDockerManifest) + R"(","digest":")" +
                           amd64_.manifest.digest + R"(","size":)" +
                           std::to_string(amd64_.manifest.size) + "}]}";
  WriteFile(dir_ + "/index.json", mismatched);
  image = OpenLayoutImage(dir_);
  ASSERT_FALSE(image.ok());
  EXPECT_NE(image.status().message().find("but the manifest says"), std::string::npos);

  // A digest crafted to escape the layout is refused before any file is opened.
  WriteFile(dir_ + "/index.json", R"({"schemaVersion":2,"manifests":[{"mediaType":")" +
                                      std::string(kOciManifest) +
                                      R"(","digest":"sha256:../../../etc/passwd","size":1}]})");
  image = OpenLayoutImage(dir_);
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().code(), Status::Code::kInvalidArgument);
}

TEST_F(LayoutTest, ReadLayoutBlobVerifiesDigestSizeAndLimit) {
  ASSERT_TRUE(WriteTestLayout(dir_, {{&amd64_, "latest"}}).ok());
  const Descriptor& config = amd64_.config;
  Result<std::string> ok = ReadLayoutBlob(dir_, config.digest, config.size);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(*ok, amd64_.config_bytes);

  Result<std::string> wrong_size = ReadLayoutBlob(dir_, config.digest, config.size + 1);
  ASSERT_FALSE(wrong_size.ok());
  EXPECT_NE(wrong_size.status().message().find("descriptor says"), std::string::npos);

  Result<std::string> too_big = ReadLayoutBlob(dir_, config.digest, -1, config.size - 1);
  ASSERT_FALSE(too_big.ok());
  EXPECT_NE(too_big.status().message().find("more than"), std::string::npos);

  Result<std::string> absent = ReadLayoutBlob(dir_, "sha256:" + std::string(64, '0'));
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(absent.status().code(), Status::Code::kNotFound);

  EXPECT_FALSE(LayoutBlobPath(dir_, "sha512:abc").ok());
  Result<std::string> path = LayoutBlobPath(dir_, config.digest);
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(*path, BlobPath(dir_, config.digest));
}

}  // namespace
}  // namespace manifold
