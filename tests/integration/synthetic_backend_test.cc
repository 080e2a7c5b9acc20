// The synthetic agent backend (a benchmark tool) on a real local farm: agents started with
// MANIFOLD_FARM_BACKEND=synthetic build nothing, yet push real single-platform images that
// the coordinator merges into a real index. Everything is read back with skopeo. The
// context carries 64 MiB of random bytes, so the streamed path (the CLI's spool and
// upload, the agents' download unpacked as it arrives) is exercised at a size where
// holding it whole would show.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>

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

// examples/hello plus `bytes` random bytes in big.bin.
std::string LargeContext(const TempDir& dir, size_t bytes) {
  const std::string context = dir.path() + "/context";
  std::filesystem::create_directories(context);
  std::filesystem::copy(SourceDir() + "/examples/hello", context,
                        std::filesystem::copy_options::recursive);
  std::mt19937_64 random(7);
  std::string data(bytes, '\0');
  for (size_t i = 0; i + 8 <= bytes; i += 8) {
    uint64_t word = random();
    std::memcpy(data.data() + i, &word, 8);
  }
  std::ofstream(context + "/big.bin", std::ios::binary) << data;
  return context;
}

TEST(SyntheticBackendTest, FarmPushesAnIndexOfSyntheticImages) {
  constexpr int kLayerBytes = 12345;
  constexpr size_t kContextBytes = 64 << 20;
  TempDir context_dir("manifold-large-context");
  const std::string context = LargeContext(context_dir, kContextBytes);
  Farm farm(FarmOptions{{},
                        {{"MANIFOLD_FARM_BACKEND", "synthetic"},
                         {"MANIFOLD_SYNTHETIC_LAYER_BYTES", std::to_string(kLayerBytes)},
                         {"MANIFOLD_SYNTHETIC_BUILD_MS", "200"}}});
  Status up = farm.Up();
  ASSERT_TRUE(up.ok()) << up.message();
  std::string tag = farm.registry() + "/synthetic:latest";
  CommandResult build = farm.Manifold({"build", "--platform", "linux/amd64,linux/arm64", "-t", tag,
                                       "--progress", "plain", context});
  ASSERT_EQ(build.exit_code, 0) << build.output << farm.LogTail("amd64-1");
  // Each agent fetched all of it, with the digest the CLI computed while packing.
  std::smatch digest;
  ASSERT_TRUE(std::regex_search(build.output, digest, std::regex("digest (sha256:[0-9a-f]{64})")))
      << build.output;
  for (const char* platform : {"linux/amd64", "linux/arm64"}) {
    std::smatch fetched;
    ASSERT_TRUE(std::regex_search(
        build.output, fetched,
        std::regex(std::string("\\[") + platform + "\\] manifold: fetched build context " +
                   digest[1].str() + " \\(([0-9]+) bytes\\)")))
        << build.output;
    EXPECT_GT(std::stoull(fetched[1].str()), kContextBytes) << platform;
  }
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
