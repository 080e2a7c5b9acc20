#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/metadata.h"

namespace manifold {
namespace {

BuildInfo SucceededBuild() {
  BuildInfo build;
  build.id = 12;
  build.state = "succeeded";
  build.tags = {"127.0.0.1:5000/hello:latest", "127.0.0.1:5000/hello:1.0"};
  build.index_digest = "sha256:" + std::string(64, 'a');
  build.index_media_type = "application/vnd.oci.image.index.v1+json";
  return build;
}

TEST(Metadata, HasTheKeysBuildxWrites) {
  nlohmann::json metadata = nlohmann::json::parse(BuildMetadataJson(SucceededBuild()));
  EXPECT_EQ(metadata["containerimage.digest"], "sha256:" + std::string(64, 'a'));
  EXPECT_EQ(metadata["image.name"], "127.0.0.1:5000/hello:latest,127.0.0.1:5000/hello:1.0");
  EXPECT_EQ(metadata["containerimage.descriptor"]["mediaType"],
            "application/vnd.oci.image.index.v1+json");
  EXPECT_EQ(metadata["containerimage.descriptor"]["digest"], "sha256:" + std::string(64, 'a'));
  EXPECT_EQ(metadata["manifold.build.id"], 12);
  EXPECT_EQ(metadata.size(), 4u);
}

TEST(Metadata, WritesTheFile) {
  std::string path =
      (std::filesystem::temp_directory_path() / ("cli_metadata_test_" + std::to_string(getpid())))
          .string();
  ASSERT_TRUE(WriteMetadataFile(path, SucceededBuild()).ok());
  std::ifstream file(path);
  std::stringstream contents;
  contents << file.rdbuf();
  EXPECT_EQ(contents.str(), BuildMetadataJson(SucceededBuild()));
  std::filesystem::remove(path);
}

TEST(Metadata, UnwritablePathIsAnError) {
  Status status = WriteMetadataFile("/nonexistent-dir/for/metadata.json", SucceededBuild());
  ASSERT_FALSE(status.ok());
  EXPECT_NE(
      status.message().find("cannot write the metadata file /nonexistent-dir/for/metadata.json"),
      std::string::npos)
      << status.message();
}

}  // namespace
}  // namespace manifold
