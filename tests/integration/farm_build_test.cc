// End to end on a real local farm (ops/farm.sh): PostgreSQL, docker-registry, the
// coordinator and two agents building with buildah, one of them under QEMU. Every check
// of what was pushed is made with skopeo, an independent reader. Build options (a
// multi-stage Dockerfile with --target, args, labels, manifest and index annotations,
// --no-cache, --pull, a git source, `-f -`) are checked per platform the same way.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/oci.h"
#include "tests/support/farm.h"
#include "tests/support/options_image.h"
#include "tests/support/read_image.h"
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

  // Readers of this farm's registry; `reference` is "repo:tag" or "repo@digest".
  json RawManifest(const std::string& reference) {
    return test::RawManifest(farm_.registry() + "/" + reference);
  }
  json Config(const std::string& reference) {
    return ImageConfig(farm_.registry() + "/" + reference);
  }
  std::string FileInImage(const std::string& reference, const std::string& path) {
    return test::FileInImage(farm_.registry() + "/" + reference, path);
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

TEST_F(FarmBuildTest, StagesArgsLabelsAndAnnotationsTakeEffectOnEveryPlatform) {
  TempDir context("manifold-options");
  std::ofstream(context.path() + "/Dockerfile") << kOptionsDockerfile;
  auto git = [&](const std::string& args) {
    CommandResult r =
        RunCommand({"sh", "-c", "git -C \"$0\" " + args, context.path()}, seconds(30));
    ASSERT_EQ(r.exit_code, 0) << args << ": " << r.output;
  };
  git("init -q");
  git("add Dockerfile");
  git("-c user.name=t -c user.email=t@example.com commit -q -m initial");
  git("remote add origin https://ci:secret-token@git.example.com/team/app.git");
  CommandResult head = RunCommand({"git", "-C", context.path(), "rev-parse", "HEAD"}, seconds(30));
  ASSERT_EQ(head.exit_code, 0) << head.output;
  std::string revision = head.output.substr(0, 40);

  std::string tag = farm_.registry() + "/options:latest";
  CommandResult build = farm_.Manifold({"build",
                                        "--platform",
                                        "linux/amd64,linux/arm64",
                                        "-t",
                                        tag,
                                        "--progress",
                                        "plain",
                                        "--target",
                                        "final",
                                        "--build-arg",
                                        "GREETING=hello options",
                                        "--label",
                                        "org.example.team=builds",
                                        "--annotation",
                                        "org.example.default=on every manifest",
                                        "--annotation",
                                        "manifest:org.example.manifest=explicit",
                                        "--annotation",
                                        "index:org.example.index=on the index",
                                        "--annotation",
                                        "index,manifest:org.example.both=everywhere",
                                        "--no-cache",
                                        "--pull",
                                        context.path()});
  ASSERT_EQ(build.exit_code, 0) << build.output;
  // The agents ran buildah with the options (the arm64 one under QEMU).
  for (const char* platform : {"linux/amd64", "linux/arm64"}) {
    EXPECT_NE(
        build.output.find(std::string("[") + platform +
                          "] manifold: buildah bud --isolation oci --platform " + platform),
        std::string::npos)
        << build.output;
  }
  EXPECT_NE(build.output.find(" --no-cache "), std::string::npos) << build.output;
  EXPECT_NE(build.output.find(" --pull=always "), std::string::npos) << build.output;

  json index = RawManifest("options:latest");
  EXPECT_EQ(index.value("mediaType", ""), std::string(kOciIndex));
  const json& annotations = index["annotations"];
  EXPECT_EQ(annotations.value("org.opencontainers.image.source", ""),
            "https://git.example.com/team/app.git")
      << index.dump();
  EXPECT_EQ(annotations.value("org.opencontainers.image.revision", ""), revision);
  std::string created = annotations.value("org.opencontainers.image.created", "");
  EXPECT_EQ(created.size(), 20u) << index.dump();  // 2026-11-29T06:00:00Z
  EXPECT_EQ(annotations.value("org.example.index", ""), "on the index");
  EXPECT_EQ(annotations.value("org.example.both", ""), "everywhere");
  EXPECT_FALSE(annotations.contains("org.example.default")) << index.dump();

  std::map<std::string, std::string> children = ChildrenByArch(index);
  ASSERT_EQ(children.size(), 2u) << index.dump();
  for (const auto& [arch, digest] : children) {
    SCOPED_TRACE(arch);
    std::string ref = "options@" + digest;
    json manifest = RawManifest(ref);
    const json& manifest_annotations = manifest["annotations"];
    EXPECT_EQ(manifest_annotations.value("org.example.default", ""), "on every manifest")
        << manifest.dump();
    EXPECT_EQ(manifest_annotations.value("org.example.manifest", ""), "explicit");
    EXPECT_EQ(manifest_annotations.value("org.example.both", ""), "everywhere");
    EXPECT_FALSE(manifest_annotations.contains("org.example.index")) << manifest.dump();

    ExpectOptionsImage(farm_.registry() + "/" + ref, arch, "hello options",
                       {{"org.example.team", "builds"}});
  }

  // The build record keeps the options.
  Result<json> record = farm_.GetBuild(1);
  ASSERT_TRUE(record.ok()) << record.status().message();
  EXPECT_EQ((*record)["labels"], json({{"org.example.team", "builds"}}));
  EXPECT_EQ((*record)["no_cache"], true);
  EXPECT_EQ((*record)["pull"], true);
  EXPECT_EQ((*record)["revision"], revision);
}

TEST_F(FarmBuildTest, DockerfileFromStdinAndExplicitSourceAnnotations) {
  TempDir context("manifold-stdin");
  std::ofstream(context.path() + "/payload.txt") << "from the context\n";
  TempDir elsewhere("manifold-stdin-dockerfile");
  std::string dockerfile = elsewhere.path() + "/Dockerfile";
  std::ofstream(dockerfile) << "FROM busybox\nCOPY payload.txt /payload.txt\n"
                               "ARG TARGETARCH\nRUN echo \"$TARGETARCH\" > /arch\n";
  std::string tag = farm_.registry() + "/stdin:latest";
  // The shell feeds the Dockerfile on stdin, as in `manifold build -f - DIR < Dockerfile`.
  CommandResult build = RunCommand(
      {"sh", "-c", "exec \"$0\" \"$@\" < \"$DOCKERFILE\"", BinaryDir() + "/cli/manifold", "build",
       "--platform", "linux/amd64,linux/arm64", "-t", tag, "-f", "-", "--annotation",
       "index:org.opencontainers.image.source=https://example.com/src", "--annotation",
       "index:org.opencontainers.image.revision=v9", context.path()},
      seconds(300), {{"MANIFOLD_SERVER", farm_.server_url()}, {"DOCKERFILE", dockerfile}});
  ASSERT_EQ(build.exit_code, 0) << build.output;

  json index = RawManifest("stdin:latest");
  EXPECT_EQ(index["annotations"].value("org.opencontainers.image.source", ""),
            "https://example.com/src");
  EXPECT_EQ(index["annotations"].value("org.opencontainers.image.revision", ""), "v9");
  for (const auto& [arch, digest] : ChildrenByArch(index)) {
    EXPECT_EQ(FileInImage("stdin@" + digest, "payload.txt"), "from the context\n");
    EXPECT_EQ(FileInImage("stdin@" + digest, "arch"), arch + "\n");
  }
  Result<json> record = farm_.GetBuild(1);
  ASSERT_TRUE(record.ok()) << record.status().message();
  EXPECT_EQ((*record)["dockerfile_path"], "-");
}

// buildx's platform list forms reach buildah as it expects them: linux/arm64/v8 becomes
// linux/arm64, linux/arm/v7 keeps its variant, and the automatic TARGET* args of each
// job carry exactly its platform. The Dockerfile has no RUN step, so the arm/v7 image is
// made without needing an arm base image.
TEST(FarmPlatformVariants, AutomaticArgsCarryEachPlatformWithItsVariant) {
  if (!std::filesystem::exists("/proc/sys/fs/binfmt_misc/qemu-arm")) {
    GTEST_SKIP() << "no QEMU binfmt handler for arm (qemu-user-static, update-binfmts --enable "
                    "qemu-arm): an agent cannot offer linux/arm/v7";
  }
  Farm farm(FarmOptions{{"amd64-1:linux/amd64", "arm-1:linux/arm64,linux/arm/v7"}, {}});
  Status up = farm.Up();
  ASSERT_TRUE(up.ok()) << up.message();
  TempDir context("manifold-variants");
  std::ofstream(context.path() + "/Dockerfile")
      << "FROM scratch\nARG TARGETPLATFORM\nARG TARGETOS\nARG TARGETARCH\nARG TARGETVARIANT\n"
         "ARG BUILDPLATFORM\nARG BUILDARCH\n"
         "LABEL tp=$TARGETPLATFORM tos=$TARGETOS ta=$TARGETARCH tv=\"$TARGETVARIANT\" "
         "bp=$BUILDPLATFORM ba=$BUILDARCH\nCOPY Dockerfile /\n";
  std::string tag = farm.registry() + "/variants:latest";
  CommandResult build = farm.Manifold({"build", "--platform", "linux/amd64,linux/arm64/v8",
                                       "--platform", "linux/arm/v7", "-t", tag, context.path()});
  ASSERT_EQ(build.exit_code, 0) << build.output << "\n" << farm.LogTail("coordinator");

  auto inspect = [&](const std::string& ref, bool config) {
    std::vector<std::string> argv = {"skopeo", "inspect", "--raw", "--tls-verify=false",
                                     "docker://" + farm.registry() + "/" + ref};
    if (config) argv.insert(argv.begin() + 2, "--config");
    CommandResult result = RunCommand(argv, seconds(60));
    EXPECT_EQ(result.exit_code, 0) << result.output;
    return json::parse(result.output, nullptr, false);
  };
  json index = inspect("variants:latest", false);
  ASSERT_EQ(index["manifests"].size(), 3u) << index.dump();
  std::map<std::string, json> labels_by_platform;
  for (const auto& child : index["manifests"]) {
    std::string platform = child["platform"].value("os", "") + "/" +
                           child["platform"].value("architecture", "") +
                           (child["platform"].contains("variant")
                                ? "/" + child["platform"]["variant"].get<std::string>()
                                : "");
    labels_by_platform[platform] =
        inspect("variants@" + child["digest"].get<std::string>(), true)["config"]["Labels"];
  }
  const std::map<std::string, std::pair<std::string, std::string>> expected = {
      {"linux/amd64", {"amd64", ""}},
      {"linux/arm64", {"arm64", ""}},
      {"linux/arm/v7", {"arm", "v7"}}};
  for (const auto& [platform, arch_variant] : expected) {
    SCOPED_TRACE(platform);
    ASSERT_TRUE(labels_by_platform.count(platform)) << index.dump();
    const json& labels = labels_by_platform[platform];
    EXPECT_EQ(labels.value("tp", ""), platform) << labels.dump();
    EXPECT_EQ(labels.value("tos", ""), "linux");
    EXPECT_EQ(labels.value("ta", ""), arch_variant.first);
    EXPECT_EQ(labels.value("tv", "missing"), arch_variant.second);
    EXPECT_EQ(labels.value("bp", ""), "linux/amd64");  // every agent here runs on x86-64
    EXPECT_EQ(labels.value("ba", ""), "amd64");
  }
}

}  // namespace
}  // namespace manifold::test
