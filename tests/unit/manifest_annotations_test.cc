#include "common/manifest_annotations.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "common/digest.h"
#include "common/oci.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_image.h"

namespace manifold {
namespace {

using Annotations = std::map<std::string, std::string>;

const test::TestImage kImage = test::MakeTestImage({"linux", "amd64", ""}, "hello\n");

TEST(AnnotateManifestTest, SetsTheRequestedAnnotationsAndKeepsEverythingElse) {
  Result<std::string> once = AnnotateManifest(kImage.manifest_bytes, {{"org.example.old", "0"}});
  ASSERT_TRUE(once.ok()) << once.status().message();
  Result<std::string> twice =
      AnnotateManifest(*once, {{"org.example.m", "1"}, {"org.example.old", "replaced"}});
  ASSERT_TRUE(twice.ok()) << twice.status().message();
  Result<Manifest> annotated = ParseManifest(*twice);
  ASSERT_TRUE(annotated.ok()) << annotated.status().message();
  EXPECT_EQ(annotated->annotations,
            (Annotations{{"org.example.m", "1"}, {"org.example.old", "replaced"}}));
  Result<Manifest> original = ParseManifest(kImage.manifest_bytes);
  ASSERT_TRUE(original.ok());
  EXPECT_EQ(annotated->media_type, original->media_type);
  EXPECT_EQ(annotated->config, original->config);
  EXPECT_EQ(annotated->layers, original->layers);
}

TEST(AnnotateManifestTest, AManifestThatHasThemKeepsItsBytes) {
  Result<std::string> annotated = AnnotateManifest(kImage.manifest_bytes, {{"a", "1"}, {"b", "2"}});
  ASSERT_TRUE(annotated.ok()) << annotated.status().message();
  EXPECT_NE(*annotated, kImage.manifest_bytes);
  Result<std::string> again = AnnotateManifest(*annotated, {{"b", "2"}});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *annotated);
  Result<std::string> none = AnnotateManifest(kImage.manifest_bytes, {});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, kImage.manifest_bytes);
}

TEST(AnnotateManifestTest, RefusesDockerManifestsThatNeedThemAndMalformedInput) {
  const test::TestImage docker =
      test::MakeTestImage({"linux", "amd64", ""}, "hello\n", /*docker_media_types=*/true);
  Result<std::string> refused = AnnotateManifest(docker.manifest_bytes, {{"org.example.m", "1"}});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("org.example.m"), std::string::npos)
      << refused.status().message();
  EXPECT_NE(refused.status().message().find("build an OCI image"), std::string::npos);
  EXPECT_TRUE(AnnotateManifest(docker.manifest_bytes, {}).ok());  // nothing asked for
  EXPECT_FALSE(AnnotateManifest("{", {{"k", "v"}}).ok());
  EXPECT_FALSE(AnnotateManifest(R"({"schemaVersion":2,"manifests":[]})", {{"k", "v"}}).ok());
}

TEST(AnnotateLayoutImageTest, PointsTheImageAtANewManifestBlob) {
  test::TempDir tmp;
  const std::string dir = tmp.path() + "/layout";
  ASSERT_TRUE(test::WriteTestLayout(dir, {{&kImage, "latest"}}).ok());
  Result<OciLayoutImage> image = OpenLayoutImage(dir);
  ASSERT_TRUE(image.ok()) << image.status().message();
  ASSERT_TRUE(AnnotateLayoutImage({{"org.example.m", "1"}}, &*image).ok());
  EXPECT_NE(image->descriptor.digest, kImage.manifest.digest);
  EXPECT_EQ(image->descriptor.digest, Sha256Digest(image->manifest_bytes));
  EXPECT_EQ(image->descriptor.size, static_cast<int64_t>(image->manifest_bytes.size()));
  EXPECT_EQ(image->manifest.annotations.at("org.example.m"), "1");
  EXPECT_EQ(image->manifest.layers, kImage.layers);
  // A push reads the manifest it names from the layout's blobs.
  Result<std::string> blob = ReadLayoutBlob(dir, image->descriptor.digest, image->descriptor.size);
  ASSERT_TRUE(blob.ok()) << blob.status().message();
  EXPECT_EQ(*blob, image->manifest_bytes);

  const std::string digest = image->descriptor.digest;
  ASSERT_TRUE(AnnotateLayoutImage({{"org.example.m", "1"}}, &*image).ok());
  EXPECT_EQ(image->descriptor.digest, digest);
  Result<OciLayoutImage> plain = OpenLayoutImage(dir);
  ASSERT_TRUE(plain.ok()) << plain.status().message();
  ASSERT_TRUE(AnnotateLayoutImage({}, &*plain).ok());
  EXPECT_EQ(plain->descriptor.digest, kImage.manifest.digest);
}

}  // namespace
}  // namespace manifold
