#include "tests/support/read_image.h"

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "common/layout.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace manifold::test {

namespace {

using nlohmann::json;
using std::chrono::seconds;

json Inspect(const std::string& reference, bool config) {
  std::vector<std::string> argv = {"skopeo", "inspect", "--raw", "--tls-verify=false",
                                   "docker://" + reference};
  if (config) argv.insert(argv.begin() + 2, "--config");
  CommandResult result = RunCommand(argv, seconds(60));
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return json::parse(result.output, nullptr, false);
}

}  // namespace

json RawManifest(const std::string& reference) { return Inspect(reference, false); }

json ImageConfig(const std::string& reference) { return Inspect(reference, true); }

std::map<std::string, std::string> ChildrenByArch(const json& index) {
  std::map<std::string, std::string> by_arch;
  if (!index.is_object() || !index.contains("manifests")) return by_arch;
  for (const auto& child : index["manifests"]) {
    by_arch[child["platform"].value("architecture", "")] = child.value("digest", "");
  }
  return by_arch;
}

std::vector<std::string> PullLayers(const std::string& reference, const std::string& layout) {
  CommandResult copied = RunCommand({"skopeo", "copy", "--src-tls-verify=false",
                                     "docker://" + reference, "oci:" + layout + ":image"},
                                    seconds(120));
  EXPECT_EQ(copied.exit_code, 0) << copied.output;
  Result<OciLayoutImage> image = OpenLayoutImage(layout);
  EXPECT_TRUE(image.ok()) << image.status().message();
  std::vector<std::string> blobs;
  if (!image.ok()) return blobs;
  for (const Descriptor& layer : image->manifest.layers) {
    Result<std::string> blob = LayoutBlobPath(layout, layer.digest);
    EXPECT_TRUE(blob.ok()) << blob.status().message();
    if (!blob.ok()) return {};
    blobs.push_back(*blob);
  }
  return blobs;
}

std::string FileInImage(const std::string& reference, const std::string& path) {
  TempDir dir("manifold-image");
  std::vector<std::string> layers = PullLayers(reference, dir.path() + "/layout");
  for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
    CommandResult file = RunCommand({"tar", "-xzOf", *it, path}, seconds(30));
    if (file.exit_code == 0) return file.output;
  }
  return "";
}

}  // namespace manifold::test
