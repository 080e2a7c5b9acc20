// `manifold imagetools create` and `imagetools inspect --raw`, run as the real binary
// against a real registry, with the result read by skopeo and by the docker CLI.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/digest.h"
#include "common/docker_config.h"
#include "common/oci.h"
#include "common/registry.h"
#include "tests/support/ports.h"
#include "tests/support/push_image.h"
#include "tests/support/registry_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_image.h"

namespace manifold {
namespace {

using test::CommandResult;
using test::MakeTestImage;
using test::RunCommand;
using test::TestImage;

constexpr auto kTimeout = std::chrono::seconds(60);

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class ImagetoolsCreateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status s = registry_.Start();
    ASSERT_TRUE(s.ok()) << s.message();
    RegistryOptions options;
    options.docker_config_dir = tmp_.path();
    options.certs_dir = tmp_.path() + "/certs.d";
    client_ = std::make_unique<RegistryClient>(registry_.host(), options);
  }

  // Pushes a one-platform image to REPO:TAG and returns it.
  TestImage Push(const std::string& repo, const std::string& tag, const char* arch,
                 bool docker = false) {
    TestImage image = MakeTestImage({"linux", arch, ""}, std::string(arch) + " " + repo, docker);
    Status s = test::PushTestImage(*client_, repo, tag, image);
    EXPECT_TRUE(s.ok()) << s.message();
    return image;
  }

  CommandResult Manifold(std::vector<std::string> args) {
    args.insert(args.begin(), std::string(MANIFOLD_BINARY_DIR) + "/cli/manifold");
    return RunCommand(args, kTimeout, {{"DOCKER_CONFIG", tmp_.path()}});
  }

  std::string Ref(const std::string& repo_and_tag) { return registry_.host() + "/" + repo_and_tag; }

  // Whether the registry has anything under the tag.
  bool Tagged(const std::string& repo, const std::string& tag) {
    return client_->GetManifest(repo, tag).ok();
  }

  test::TempDir tmp_;
  test::RegistryServer registry_;
  std::unique_ptr<RegistryClient> client_;
};

TEST_F(ImagetoolsCreateTest, MergesImagesFromOtherRepositoriesIntoAnAnnotatedIndex) {
  TestImage amd64 = Push("src/amd64", "v1", "amd64");
  TestImage arm64 = Push("src/arm64", "v1", "arm64");
  CommandResult r = Manifold(
      {"imagetools", "create", "-t", Ref("team/app:multi"), "-t", Ref("team/app:1.0"),
       "--annotation", "index:org.opencontainers.image.revision=abc123", "--annotation",
       "org.example.note=merged", Ref("src/amd64:v1"), Ref("src/arm64@" + arm64.manifest.digest)});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string digest = r.output.substr(0, r.output.find('\n'));
  ASSERT_TRUE(IsValidDigest(digest)) << r.output;

  // inspect --raw prints the exact bytes; skopeo reads the same bytes.
  CommandResult raw = Manifold({"imagetools", "inspect", "--raw", Ref("team/app:1.0")});
  ASSERT_EQ(raw.exit_code, 0) << raw.output;
  EXPECT_EQ(Sha256Digest(raw.output), digest);
  CommandResult skopeo = RunCommand(
      {"skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + Ref("team/app:multi")},
      kTimeout);
  ASSERT_EQ(skopeo.exit_code, 0) << skopeo.output;
  EXPECT_EQ(skopeo.output, raw.output);
  Result<Index> index = ParseIndex(skopeo.output);
  ASSERT_TRUE(index.ok()) << index.status().message();
  EXPECT_EQ(index->media_type, kOciIndex);
  ASSERT_EQ(index->manifests.size(), 2u);
  EXPECT_EQ(index->manifests[0].digest, amd64.manifest.digest);
  EXPECT_EQ(index->manifests[1].digest, arm64.manifest.digest);
  EXPECT_EQ(index->annotations.at("org.opencontainers.image.revision"), "abc123");
  EXPECT_EQ(index->annotations.at("org.example.note"), "merged");

  // The docker CLI (no engine needed) reads the index and both platforms.
  CommandResult docker =
      RunCommand({"docker", "manifest", "inspect", "--insecure", Ref("team/app:multi")}, kTimeout,
                 {{"DOCKER_CONFIG", tmp_.path()}});
  ASSERT_EQ(docker.exit_code, 0) << docker.output;
  nlohmann::json parsed = nlohmann::json::parse(docker.output, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << docker.output;
  ASSERT_EQ(parsed["manifests"].size(), 2u) << docker.output;
  EXPECT_EQ(parsed["manifests"][1]["platform"]["architecture"], "arm64") << docker.output;
  EXPECT_EQ(parsed["manifests"][1]["digest"], arm64.manifest.digest) << docker.output;

  // The children were mounted into team/app: skopeo resolves arm64 to its config there.
  CommandResult arm = RunCommand({"skopeo", "inspect", "--tls-verify=false", "--override-arch",
                                  "arm64", "docker://" + Ref("team/app:multi")},
                                 kTimeout);
  ASSERT_EQ(arm.exit_code, 0) << arm.output;
  EXPECT_TRUE(Contains(arm.output, "\"Architecture\": \"arm64\"")) << arm.output;
}

TEST_F(ImagetoolsCreateTest, DockerManifestListsGetNoAnnotationsAndSaySo) {
  Push("team/d", "amd64", "amd64", /*docker=*/true);
  Push("team/d", "arm64", "arm64", /*docker=*/true);
  CommandResult r = Manifold({"imagetools", "create", "-t", Ref("team/d:multi"), "--annotation",
                              "index:k=v", Ref("team/d:amd64"), Ref("team/d:arm64")});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(Contains(r.output, "manifest list cannot carry annotations")) << r.output;
  EXPECT_FALSE(Tagged("team/d", "multi"));

  // Without annotations the Docker children give a Docker manifest list.
  r = Manifold({"imagetools", "create", "-t", Ref("team/d:multi"), Ref("team/d:amd64"),
                Ref("team/d:arm64")});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  Result<FetchedManifest> list = client_->GetManifest("team/d", "multi");
  ASSERT_TRUE(list.ok()) << list.status().message();
  EXPECT_EQ(list->media_type, kDockerManifestList);
  CommandResult docker =
      RunCommand({"docker", "manifest", "inspect", "--insecure", Ref("team/d:multi")}, kTimeout,
                 {{"DOCKER_CONFIG", tmp_.path()}});
  ASSERT_EQ(docker.exit_code, 0) << docker.output;
  EXPECT_TRUE(Contains(docker.output, std::string(kDockerManifestList))) << docker.output;
}

// --dry-run prints the index that would be pushed and writes nothing: no tag, and no child
// copied into the target repository.
TEST_F(ImagetoolsCreateTest, DryRunPrintsTheIndexAndWritesNothing) {
  TestImage amd64 = Push("src/amd64", "v1", "amd64");
  TestImage arm64 = Push("src/arm64", "v1", "arm64");
  CommandResult r =
      Manifold({"imagetools", "create", "--dry-run", "-t", Ref("team/dry:multi"), "--annotation",
                "index:org.example.k=v", Ref("src/amd64:v1"), Ref("src/arm64:v1")});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  Result<Index> index = ParseIndex(r.output.substr(0, r.output.find_last_not_of('\n') + 1));
  ASSERT_TRUE(index.ok()) << index.status().message() << "\n" << r.output;
  ASSERT_EQ(index->manifests.size(), 2u);
  EXPECT_EQ(index->manifests[0].digest, amd64.manifest.digest);
  EXPECT_EQ(index->manifests[1].digest, arm64.manifest.digest);
  EXPECT_EQ(index->annotations.at("org.example.k"), "v");
  EXPECT_FALSE(Tagged("team/dry", "multi"));
  EXPECT_FALSE(*client_->ManifestExists("team/dry", amd64.manifest.digest));
  EXPECT_FALSE(*client_->ManifestExists("team/dry", arm64.manifest.digest));
}

// --append keeps what the tag lists, adds a new platform, and lets a rebuilt platform
// replace its old image; with nothing under the tag it fails and tags nothing.
TEST_F(ImagetoolsCreateTest, AppendAddsAPlatformAndReplacesARebuiltOne) {
  TestImage amd64 = Push("team/app", "amd64", "amd64");
  ASSERT_EQ(Manifold({"imagetools", "create", "-t", Ref("team/app:latest"), Ref("team/app:amd64")})
                .exit_code,
            0);
  TestImage arm64 = Push("team/app", "arm64", "arm64");
  CommandResult r = Manifold(
      {"imagetools", "create", "--append", "-t", Ref("team/app:latest"), Ref("team/app:arm64")});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto listed = [&]() {
    std::vector<std::string> out;
    Result<FetchedManifest> fetched = client_->GetManifest("team/app", "latest");
    EXPECT_TRUE(fetched.ok()) << fetched.status().message();
    if (!fetched.ok()) return out;
    Result<Index> index = ParseIndex(fetched->bytes);
    EXPECT_TRUE(index.ok()) << index.status().message();
    if (!index.ok()) return out;
    for (const Descriptor& d : index->manifests) {
      out.push_back(d.platform->ToString() + " " + d.digest);
    }
    return out;
  };
  EXPECT_EQ(listed(), (std::vector<std::string>{"linux/amd64 " + amd64.manifest.digest,
                                                "linux/arm64 " + arm64.manifest.digest}));

  TestImage rebuilt = MakeTestImage({"linux", "arm64", ""}, "arm64 rebuilt");
  ASSERT_TRUE(test::PushTestImage(*client_, "team/app", "arm64-2", rebuilt).ok());
  ASSERT_NE(rebuilt.manifest.digest, arm64.manifest.digest);
  r = Manifold(
      {"imagetools", "create", "--append", "-t", Ref("team/app:latest"), Ref("team/app:arm64-2")});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(listed(), (std::vector<std::string>{"linux/amd64 " + amd64.manifest.digest,
                                                "linux/arm64 " + rebuilt.manifest.digest}));

  r = Manifold(
      {"imagetools", "create", "--append", "-t", Ref("team/app:none"), Ref("team/app:arm64")});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(Contains(r.output, "--append reads what -t " + Ref("team/app:none"))) << r.output;
  EXPECT_FALSE(Tagged("team/app", "none"));
}

TEST_F(ImagetoolsCreateTest, BadInputFailsClearlyAndTagsNothing) {
  Push("team/m", "oci", "amd64");
  Push("team/m", "docker", "arm64", /*docker=*/true);
  // OCI and Docker children are not mixed.
  CommandResult r = Manifold(
      {"imagetools", "create", "-t", Ref("team/m:multi"), Ref("team/m:oci"), Ref("team/m:docker")});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(Contains(r.output, "cannot list OCI and Docker manifests in one index")) << r.output;
  EXPECT_FALSE(Tagged("team/m", "multi"));

  // A malformed reference.
  r = Manifold({"imagetools", "create", "-t", Ref("Team/M:multi"), Ref("team/m:oci")});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(Contains(r.output, "Team/M")) << r.output;

  // A source that does not exist names the registry, repository and status.
  r = Manifold({"imagetools", "create", "-t", Ref("team/m:multi"), Ref("team/m:nope")});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(Contains(r.output, "registry " + registry_.host())) << r.output;
  EXPECT_TRUE(Contains(r.output, "team/m:nope")) << r.output;
  EXPECT_TRUE(Contains(r.output, "HTTP 404")) << r.output;
  EXPECT_FALSE(Tagged("team/m", "multi"));

  // A registry host that does not resolve.
  r = Manifold({"imagetools", "inspect", "no-such-registry.invalid/team/m:oci"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(Contains(r.output, "no-such-registry.invalid")) << r.output;

  // An annotation meant for something other than the index.
  r = Manifold({"imagetools", "create", "-t", Ref("team/m:multi"), "--annotation", "manifest:k=v",
                Ref("team/m:oci")});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(Contains(r.output, "index:KEY=VALUE")) << r.output;
  EXPECT_FALSE(Tagged("team/m", "multi"));
}

// Credentials in config.json that the registry refuses: the command fails saying whose
// and what to do, never shows the password, and writes no tag.
TEST(ImagetoolsCreateAuthTest, AWrongPasswordFailsClearlyAndTagsNothing) {
  // bcrypt of "s3cret" for user "ci".
  test::RegistryServerOptions options;
  options.htpasswd = "ci:$2b$04$WYwNiYtOGMLdzSYyQEeFMuNU5x5XMn5zDH2A7xKy.JtiZRwWPE93C\n";
  test::RegistryServer registry;
  Status s = registry.Start(options);
  ASSERT_TRUE(s.ok()) << s.message();
  test::TempDir tmp;
  RegistryOptions right;
  right.credentials = RegistryCredentials{"ci", "s3cret", ""};
  right.certs_dir = tmp.path() + "/certs.d";
  RegistryClient client(registry.host(), right);
  TestImage image = MakeTestImage({"linux", "amd64", ""}, "behind a password\n");
  s = test::PushTestImage(client, "team/app", "amd64", image);
  ASSERT_TRUE(s.ok()) << s.message();

  ASSERT_TRUE(StoreRegistryCredentials(tmp.path(), registry.host(), "ci", "not-it").ok());
  const std::string repo = registry.host() + "/team/app";
  CommandResult r = RunCommand({std::string(MANIFOLD_BINARY_DIR) + "/cli/manifold", "imagetools",
                                "create", "-t", repo + ":multi", repo + ":amd64"},
                               kTimeout, {{"DOCKER_CONFIG", tmp.path()}});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(Contains(r.output, "registry " + registry.host())) << r.output;
  EXPECT_TRUE(Contains(r.output, "get manifest team/app:amd64")) << r.output;
  EXPECT_TRUE(Contains(r.output, "refused the credentials of the user \"ci\"")) << r.output;
  EXPECT_TRUE(Contains(r.output, "manifold login " + registry.host())) << r.output;
  EXPECT_FALSE(Contains(r.output, "not-it")) << r.output;
  EXPECT_FALSE(client.GetManifest("team/app", "multi").ok());
}

}  // namespace
}  // namespace manifold
