#include <gtest/gtest.h>

#include "cli/imagetools.h"
#include "common/digest.h"

namespace manifold {
namespace {

const std::string kAmd64 = "sha256:" + std::string(64, 'a');
const std::string kArm64 = "sha256:" + std::string(64, 'b');

Reference Ref(const std::string& text) {
  Result<Reference> reference = ParseReference(text);
  EXPECT_TRUE(reference.ok()) << reference.status().message();
  return *reference;
}

TEST(FormatInspect, IndexListsEveryChildWithItsPlatform) {
  std::string bytes = R"({"schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [
      {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ")" +
                      kAmd64 + R"(", "size": 100,
       "platform": {"os": "linux", "architecture": "amd64"}},
      {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ")" +
                      kArm64 + R"(", "size": 101,
       "platform": {"os": "linux", "architecture": "arm64"}}]})";
  FetchedManifest manifest{std::string(kOciIndex), Sha256Digest(bytes), bytes};
  Result<std::string> text = FormatInspect(Ref("127.0.0.1:5000/hello:latest"), manifest);
  ASSERT_TRUE(text.ok()) << text.status().message();
  EXPECT_EQ(*text,
            "Name:      127.0.0.1:5000/hello:latest\n"
            "MediaType: application/vnd.oci.image.index.v1+json\n"
            "Digest:    " +
                manifest.digest +
                "\n"
                "\n"
                "Manifests:\n"
                "  Name:      127.0.0.1:5000/hello:latest@" +
                kAmd64 +
                "\n"
                "  MediaType: application/vnd.oci.image.manifest.v1+json\n"
                "  Platform:  linux/amd64\n"
                "\n"
                "  Name:      127.0.0.1:5000/hello:latest@" +
                kArm64 +
                "\n"
                "  MediaType: application/vnd.oci.image.manifest.v1+json\n"
                "  Platform:  linux/arm64\n");
}

TEST(FormatInspect, SingleManifestShowsNameTypeAndDigestOnly) {
  FetchedManifest manifest{std::string(kOciManifest), kAmd64, "{}"};
  Result<std::string> text = FormatInspect(Ref("127.0.0.1:5000/hello:1"), manifest);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text,
            "Name:      127.0.0.1:5000/hello:1\n"
            "MediaType: application/vnd.oci.image.manifest.v1+json\n"
            "Digest:    " +
                kAmd64 + "\n");
}

TEST(FormatInspect, MalformedIndexIsAnError) {
  FetchedManifest manifest{std::string(kOciIndex), kAmd64, R"({"manifests": 3})"};
  Result<std::string> text = FormatInspect(Ref("127.0.0.1:5000/hello:1"), manifest);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().message().rfind("the index 127.0.0.1:5000/hello:1 is malformed: ", 0), 0u)
      << text.status().message();
}

}  // namespace
}  // namespace manifold
