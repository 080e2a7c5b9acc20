// The synthetic agent backend (a benchmark tool) on a real local farm: agents started with
// MANIFOLD_FARM_BACKEND=synthetic build nothing, yet push real single-platform images that
// the coordinator merges into a real index. Everything is read back with skopeo.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/layout.h"
#include "common/oci.h"
#include "tests/support/farm.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace manifold::test {
namespace {

using nlohmann::json;
using std::chrono::seconds;

CommandResult Skopeo(std::vector<std::string> args) {
  args.insert(args.begin(), "skopeo");
  return RunCommand(args, seconds(60));
}

TEST(SyntheticBackendTest, FarmPushesAnIndexOfSyntheticImages) {
  constexpr int kLayerBytes = 12345;
  Farm farm(FarmOptions{{},
                        {{"MANIFOLD_FARM_BACKEND", "synthetic"},
                         {"MANIFOLD_SYNTHETIC_LAYER_BYTES", std::to_string(kLayerBytes)},
                         {"MANIFOLD_SYNTHETIC_BUILD_MS", "200"}}});
  Status up = farm.Up();
  ASSERT_TRUE(up.ok()) << up.message();
  std::string tag = farm.registry() + "/synthetic:latest";
  CommandResult build = farm.Manifold({"build", "--platform", "linux/amd64,linux/arm64", "-t", tag,
                                       "--progress", "plain", SourceDir() + "/examples/hello"});
  ASSERT_EQ(build.exit_code, 0) << build.output << farm.LogTail("amd64-1");
  EXPECT_NE(build.output.find("[linux/arm64] manifold: synthetic build for linux/arm64"),
            std::string::npos)
      << build.output;
  // Nothing of the Dockerfile ran.
  EXPECT_EQ(build.output.find("built on"), std::string::npos) << build.output;

  CommandResult raw = Skopeo({"inspect", "--raw", "--tls-verify=false", "docker://" + tag});
  ASSERT_EQ(raw.exit_code, 0) << raw.output;
  json index = json::parse(raw.output, nullptr, false);
  EXPECT_EQ(index.value("mediaType", ""), std::string(kOciIndex));
  ASSERT_EQ(index["manifests"].size(), 2u) << index.dump();
  std::set<std::string> architectures;
  for (const json& child : index["manifests"]) {
    std::string arch = child["platform"]["architecture"];
    architectures.insert(arch);
    std::string reference =
        "docker://" + farm.registry() + "/synthetic@" + child["digest"].get<std::string>();
    CommandResult config =
        Skopeo({"inspect", "--config", "--raw", "--tls-verify=false", reference});
    ASSERT_EQ(config.exit_code, 0) << config.output;
    json config_json = json::parse(config.output, nullptr, false);
    EXPECT_EQ(config_json.value("architecture", ""), arch);
    EXPECT_EQ(config_json.value("os", ""), "linux");
    EXPECT_EQ(config_json["config"]["Labels"].value("org.manifold.synthetic", ""), "true");

    // The layer is a real gzip tar holding the random file of the configured size.
    TempDir dir("manifold-synthetic");
    std::string layout = dir.path() + "/layout";
    CommandResult copied =
        Skopeo({"copy", "--src-tls-verify=false", reference, "oci:" + layout + ":image"});
    ASSERT_EQ(copied.exit_code, 0) << copied.output;
    Result<OciLayoutImage> image = OpenLayoutImage(layout);
    ASSERT_TRUE(image.ok()) << image.status().message();
    ASSERT_EQ(image->manifest.layers.size(), 1u);
    EXPECT_EQ(image->manifest.layers[0].media_type, std::string(kOciLayerTarGzip));
    Result<std::string> blob = LayoutBlobPath(layout, image->manifest.layers[0].digest);
    ASSERT_TRUE(blob.ok());
    CommandResult listing = RunCommand({"tar", "-tvzf", *blob}, seconds(30));
    ASSERT_EQ(listing.exit_code, 0) << listing.output;
    EXPECT_NE(listing.output.find(std::to_string(kLayerBytes)), std::string::npos)
        << listing.output;
    EXPECT_NE(listing.output.find("synthetic.bin"), std::string::npos) << listing.output;
  }
  EXPECT_EQ(architectures, (std::set<std::string>{"amd64", "arm64"}));
}

}  // namespace
}  // namespace manifold::test
