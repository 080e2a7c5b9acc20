// End to end on a real local farm (ops/farm.sh): PostgreSQL, docker-registry, the
// coordinator and two agents building with buildah, one of them under QEMU. Every check
// of what was pushed is made with skopeo, an independent reader.
#include <gtest/gtest.h>

#include <fstream>
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

class FarmBuildTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status up = farm_.Up();
    ASSERT_TRUE(up.ok()) << up.message();
  }

  void TearDown() override {
    if (HasFailure()) {
      for (const char* name : {"coordinator", "amd64-1", "arm64-1"}) {
        std::cerr << "---- " << name << " log ----\n" << farm_.LogTail(name) << "\n";
      }
    }
  }

  CommandResult Skopeo(std::vector<std::string> args) {
    std::vector<std::string> argv = {"skopeo"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, std::chrono::seconds(60));
  }

  // The raw manifest or index at `reference` ("repo:tag" or "repo@digest").
  json RawManifest(const std::string& reference) {
    CommandResult result = Skopeo({"inspect", "--raw", "--tls-verify=false",
                                   "docker://" + farm_.registry() + "/" + reference});
    EXPECT_EQ(result.exit_code, 0) << result.output;
    return json::parse(result.output, nullptr, false);
  }

  json Config(const std::string& reference) {
    CommandResult result = Skopeo({"inspect", "--config", "--raw", "--tls-verify=false",
                                   "docker://" + farm_.registry() + "/" + reference});
    EXPECT_EQ(result.exit_code, 0) << result.output;
    return json::parse(result.output, nullptr, false);
  }

  // Reads `path` from the image's filesystem, searching layers from the top.
  std::string FileInImage(const std::string& reference, const std::string& path) {
    TempDir dir("manifold-image");
    std::string layout = dir.path() + "/layout";
    CommandResult copied =
        Skopeo({"copy", "--src-tls-verify=false", "docker://" + farm_.registry() + "/" + reference,
                "oci:" + layout + ":image"});
    EXPECT_EQ(copied.exit_code, 0) << copied.output;
    Result<OciLayoutImage> image = OpenLayoutImage(layout);
    EXPECT_TRUE(image.ok()) << image.status().message();
    if (!image.ok()) return "";
    const auto& layers = image->manifest.layers;
    for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
      Result<std::string> blob = LayoutBlobPath(layout, it->digest);
      if (!blob.ok()) continue;
      CommandResult file = RunCommand({"tar", "-xzOf", *blob, path}, seconds(30));
      if (file.exit_code == 0) return file.output;
    }
    return "";
  }

  Farm farm_;
};

TEST_F(FarmBuildTest, BuildsTwoPlatformIndexLikeBuildx) {
  TempDir scratch("manifold-meta");
  std::string metadata = scratch.path() + "/metadata.json";
  std::string tag = farm_.registry() + "/hello:latest";
  std::string second_tag = farm_.registry() + "/hello:v1";
  CommandResult build = farm_.Manifold({"build", "--platform", "linux/amd64,linux/arm64", "-t", tag,
                                        "--tag", second_tag, "--metadata-file", metadata,
                                        "--progress", "plain", SourceDir() + "/examples/hello"});
  ASSERT_EQ(build.exit_code, 0) << build.output;

  // Each platform's log is streamed with its prefix; the RUN step ran on each architecture.
  EXPECT_NE(build.output.find("[linux/amd64] built on x86_64"), std::string::npos) << build.output;
  EXPECT_NE(build.output.find("[linux/arm64] built on aarch64"), std::string::npos) << build.output;

  std::ifstream metadata_file(metadata);
  json meta = json::parse(metadata_file, nullptr, false);
  ASSERT_TRUE(meta.is_object()) << "metadata file is not JSON";
  std::string digest = meta.value("containerimage.digest", "");
  ASSERT_EQ(digest.rfind("sha256:", 0), 0u) << meta.dump();
  EXPECT_EQ(meta.value("image.name", ""), tag + "," + second_tag);
  // The digest is printed as the last line, as scripts expect.
  EXPECT_NE(build.output.rfind(digest), std::string::npos);

  // The tag holds an OCI image index with exactly the two platforms.
  json index = RawManifest("hello:latest");
  EXPECT_EQ(index.value("mediaType", ""), std::string(kOciIndex));
  ASSERT_EQ(index["manifests"].size(), 2u) << index.dump();
  std::map<std::string, std::string> child_by_arch;
  for (const auto& child : index["manifests"]) {
    EXPECT_EQ(child["mediaType"], std::string(kOciManifest));
    EXPECT_EQ(child["platform"]["os"], "linux");
    child_by_arch[child["platform"]["architecture"]] = child["digest"];
  }
  ASSERT_EQ(child_by_arch.size(), 2u);
  ASSERT_TRUE(child_by_arch.count("amd64") && child_by_arch.count("arm64")) << index.dump();
  // Both tags hold the same index, whose digest is the one reported.
  EXPECT_EQ(RawManifest("hello:v1"), index);
  CommandResult by_digest = Skopeo({"inspect", "--raw", "--tls-verify=false",
                                    "docker://" + farm_.registry() + "/hello@" + digest});
  EXPECT_EQ(by_digest.exit_code, 0)
      << "index not found by the reported digest: " << by_digest.output;

  // Each child's config names its architecture, and the file written by the RUN step
  // says what the build really ran on.
  const std::map<std::string, std::string> machine = {{"amd64", "x86_64"}, {"arm64", "aarch64"}};
  for (const auto& [arch, child] : child_by_arch) {
    json config = Config("hello@" + child);
    EXPECT_EQ(config.value("architecture", ""), arch);
    EXPECT_EQ(config.value("os", ""), "linux");
    EXPECT_EQ(FileInImage("hello@" + child, "etc/manifold-arch"), machine.at(arch) + "\n");
  }

  // The build is visible afterwards with status and logs.
  CommandResult status = farm_.Manifold({"status", "1"});
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_NE(status.output.find("succeeded"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find(digest), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("emulated"), std::string::npos) << status.output;
  CommandResult logs = farm_.Manifold({"logs", "1"});
  EXPECT_EQ(logs.exit_code, 0) << logs.output;
  EXPECT_NE(logs.output.find("[linux/arm64] built on aarch64"), std::string::npos) << logs.output;

  // The same build again: the blobs exist, so the agents skip them, and the same index
  // comes out (identical children, identical bytes).
  CommandResult again = farm_.Manifold({"build", "--platform", "linux/amd64,linux/arm64", "-t", tag,
                                        SourceDir() + "/examples/hello"});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("already on the coordinator"), std::string::npos) << again.output;
}

TEST_F(FarmBuildTest, OnePlatformFailingFailsTheBuildAndPushesNoIndex) {
  std::string tag = farm_.registry() + "/failing:latest";
  CommandResult build = farm_.Manifold({"build", "--platform", "linux/amd64,linux/arm64", "-t", tag,
                                        SourceDir() + "/examples/failing"});
  EXPECT_EQ(build.exit_code, 1) << build.output;
  EXPECT_NE(build.output.find("build 1 failed: linux/arm64 failed on agent arm64-1"),
            std::string::npos)
      << build.output;

  CommandResult status = farm_.Manifold({"status", "1"});
  EXPECT_NE(status.output.find("failed"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("exited with status 3"), std::string::npos) << status.output;

  // The failing platform's log is kept, up to the failing step and buildah's verdict. (The
  // step's own stderr line is not checked: buildah sometimes drops a RUN's last output
  // when the step exits at once.)
  CommandResult logs = farm_.Manifold({"logs", "1"});
  EXPECT_NE(logs.output.find("[linux/arm64] building on aarch64"), std::string::npos)
      << logs.output;
  EXPECT_NE(logs.output.find("[linux/arm64] STEP 3/3: RUN test"), std::string::npos) << logs.output;
  EXPECT_NE(logs.output.find("[linux/arm64] manifold: failed: buildah bud for linux/arm64 "
                             "exited with status 3"),
            std::string::npos)
      << logs.output;

  // No index under the tag.
  CommandResult inspect = Skopeo({"inspect", "--raw", "--tls-verify=false", "docker://" + tag});
  EXPECT_NE(inspect.exit_code, 0) << "an index was pushed: " << inspect.output;
  EXPECT_NE(inspect.output.find("manifest unknown"), std::string::npos) << inspect.output;
}

TEST_F(FarmBuildTest, CliErrorsAreOneLineAndNonZero) {
  std::string hello = SourceDir() + "/examples/hello";
  std::string tag = farm_.registry() + "/hello:latest";

  CommandResult bad_platform =
      farm_.Manifold({"build", "--platform", "linux/amd64,linux/sparc", "-t", tag, hello});
  EXPECT_NE(bad_platform.exit_code, 0);
  EXPECT_NE(bad_platform.output.find("linux/sparc"), std::string::npos) << bad_platform.output;

  TempDir empty("manifold-empty");
  CommandResult no_dockerfile =
      farm_.Manifold({"build", "--platform", "linux/amd64", "-t", tag, empty.path()});
  EXPECT_NE(no_dockerfile.exit_code, 0);
  EXPECT_NE(no_dockerfile.output.find("Dockerfile"), std::string::npos) << no_dockerfile.output;
  EXPECT_NE(no_dockerfile.output.find("-f"), std::string::npos) << no_dockerfile.output;

  CommandResult unknown = farm_.Manifold({"status", "4242"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.output.find("no build 4242"), std::string::npos) << unknown.output;

  CommandResult unreachable =
      RunCommand({BinaryDir() + "/cli/manifold", "--server", "http://127.0.0.1:1", "build",
                  "--platform", "linux/amd64", "-t", tag, hello},
                 std::chrono::seconds(60));
  EXPECT_EQ(unreachable.exit_code, 1);
  EXPECT_NE(unreachable.output.find("cannot reach the coordinator"), std::string::npos)
      << unreachable.output;

  for (const CommandResult* r : {&bad_platform, &no_dockerfile, &unknown, &unreachable}) {
    // One line each: what is wrong and what to do.
    EXPECT_EQ(std::count(r->output.begin(), r->output.end(), '\n'), 1) << r->output;
  }
}

}  // namespace
}  // namespace manifold::test
