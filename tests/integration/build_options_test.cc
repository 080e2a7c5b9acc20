// Build options end to end on a real local farm (ops/farm.sh): `manifold build` with a
// multi-stage Dockerfile, --target, --build-arg, --label, --annotation for manifests and
// the index, --no-cache and --pull, from a git work tree, built for linux/amd64 natively
// and linux/arm64 under QEMU. skopeo, an independent reader, shows per platform that
// each option took effect; `-f -` reads the Dockerfile from stdin.
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

// The build stage records what the automatic and given args were and where it ran; the
// final stage takes only that record (COPY --from); "broken" after it must not be built.
constexpr const char* kDockerfile = R"(FROM busybox AS build
ARG TARGETARCH
ARG TARGETPLATFORM
ARG GREETING=unset
RUN mkdir /out && echo "$TARGETARCH" > /out/targetarch \
 && echo "$TARGETPLATFORM" > /out/targetplatform \
 && echo "$GREETING" > /out/greeting && uname -m > /out/machine

FROM busybox AS final
ARG TARGETARCH
COPY --from=build /out /etc/manifold-out
LABEL stage=final arch=$TARGETARCH

FROM final AS broken
RUN exit 7
)";

class BuildOptionsTest : public ::testing::Test {
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
    return RunCommand(argv, seconds(60));
  }

  json Inspect(const std::string& reference, bool config) {
    std::vector<std::string> args = {"inspect", "--raw", "--tls-verify=false"};
    if (config) args.insert(args.begin() + 1, "--config");
    args.push_back("docker://" + farm_.registry() + "/" + reference);
    CommandResult result = Skopeo(args);
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

  // The index at repo:tag and its children by architecture.
  std::map<std::string, std::string> Children(const json& index) {
    std::map<std::string, std::string> by_arch;
    for (const auto& child : index["manifests"]) {
      by_arch[child["platform"]["architecture"]] = child["digest"];
    }
    return by_arch;
  }

  Farm farm_;
};

TEST_F(BuildOptionsTest, StagesArgsLabelsAndAnnotationsTakeEffectOnEveryPlatform) {
  TempDir context("manifold-options");
  std::ofstream(context.path() + "/Dockerfile") << kDockerfile;
  auto git = [&](const std::string& args) {
    CommandResult r = RunCommand({"sh", "-c", "git -C \"$0\" " + args, context.path()}, seconds(30));
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
  CommandResult build = farm_.Manifold(
      {"build", "--platform", "linux/amd64,linux/arm64", "-t", tag, "--progress", "plain",
       "--target", "final", "--build-arg", "GREETING=hello options", "--label",
       "org.example.team=builds", "--annotation", "org.example.default=on every manifest",
       "--annotation", "manifest:org.example.manifest=explicit", "--annotation",
       "index:org.example.index=on the index", "--annotation",
       "index,manifest:org.example.both=everywhere", "--no-cache", "--pull", context.path()});
  ASSERT_EQ(build.exit_code, 0) << build.output;
  // The agents ran buildah with the options (the arm64 one under QEMU).
  for (const char* platform : {"linux/amd64", "linux/arm64"}) {
    EXPECT_NE(build.output.find(std::string("[") + platform +
                                "] manifold: buildah bud --isolation chroot --platform " +
                                platform),
              std::string::npos)
        << build.output;
  }
  EXPECT_NE(build.output.find("--no-cache --pull=always"), std::string::npos) << build.output;

  json index = Inspect("options:latest", false);
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

  std::map<std::string, std::string> children = Children(index);
  ASSERT_EQ(children.size(), 2u) << index.dump();
  const std::map<std::string, std::string> machine = {{"amd64", "x86_64"}, {"arm64", "aarch64"}};
  for (const auto& [arch, digest] : children) {
    SCOPED_TRACE(arch);
    std::string ref = "options@" + digest;
    json manifest = Inspect(ref, false);
    const json& manifest_annotations = manifest["annotations"];
    EXPECT_EQ(manifest_annotations.value("org.example.default", ""), "on every manifest")
        << manifest.dump();
    EXPECT_EQ(manifest_annotations.value("org.example.manifest", ""), "explicit");
    EXPECT_EQ(manifest_annotations.value("org.example.both", ""), "everywhere");
    EXPECT_FALSE(manifest_annotations.contains("org.example.index")) << manifest.dump();

    json config = Inspect(ref, true);
    EXPECT_EQ(config.value("architecture", ""), arch);
    const json& labels = config["config"]["Labels"];
    EXPECT_EQ(labels.value("org.example.team", ""), "builds") << config.dump();
    EXPECT_EQ(labels.value("stage", ""), "final");  // --target: not "broken", which exits 7
    EXPECT_EQ(labels.value("arch", ""), arch);      // ARG TARGETARCH in the final stage

    // COPY --from brought the build stage's record, made on (or emulating) the platform.
    EXPECT_EQ(FileInImage(ref, "etc/manifold-out/targetarch"), arch + "\n");
    EXPECT_EQ(FileInImage(ref, "etc/manifold-out/targetplatform"), "linux/" + arch + "\n");
    EXPECT_EQ(FileInImage(ref, "etc/manifold-out/greeting"), "hello options\n");
    EXPECT_EQ(FileInImage(ref, "etc/manifold-out/machine"), machine.at(arch) + "\n");
  }

  // The build record keeps the options.
  Result<json> record = farm_.GetBuild(1);
  ASSERT_TRUE(record.ok()) << record.status().message();
  EXPECT_EQ((*record)["labels"], json({{"org.example.team", "builds"}}));
  EXPECT_EQ((*record)["no_cache"], true);
  EXPECT_EQ((*record)["pull"], true);
  EXPECT_EQ((*record)["revision"], revision);
}

TEST_F(BuildOptionsTest, DockerfileFromStdinAndExplicitSourceAnnotations) {
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

  json index = Inspect("stdin:latest", false);
  EXPECT_EQ(index["annotations"].value("org.opencontainers.image.source", ""),
            "https://example.com/src");
  EXPECT_EQ(index["annotations"].value("org.opencontainers.image.revision", ""), "v9");
  for (const auto& [arch, digest] : Children(index)) {
    EXPECT_EQ(FileInImage("stdin@" + digest, "payload.txt"), "from the context\n");
    EXPECT_EQ(FileInImage("stdin@" + digest, "arch"), arch + "\n");
  }
  Result<json> record = farm_.GetBuild(1);
  ASSERT_TRUE(record.ok()) << record.status().message();
  EXPECT_EQ((*record)["dockerfile_path"], "-");
}

}  // namespace
}  // namespace manifold::test
