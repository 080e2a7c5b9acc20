// The merger's index annotations against a real registry: created, source and revision
// from the build, custom ones overriding them on an OCI index, and a Docker manifest list
// (which has no annotations) refusing requested ones instead of dropping them.
#include <gtest/gtest.h>

#include "common/oci.h"
#include "common/registry.h"
#include "coordinator/merger.h"
#include "tests/support/registry_server.h"
#include "tests/support/test_image.h"

namespace manifold {
namespace {

using test::MakeTestImage;
using test::TestImage;

class MergerAnnotationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status s = registry_.Start();
    ASSERT_TRUE(s.ok()) << s.message();
    client_ = std::make_unique<RegistryClient>(registry_.host());
  }

  // Pushes an amd64 and an arm64 image to `repo` and returns a merging build for them.
  BuildRecord PushedBuild(const std::string& repo, bool docker) {
    BuildRecord build;
    build.id = 3;
    build.state = "merging";
    build.spec.tags = {registry_.host() + "/" + repo + ":latest"};
    build.merge_started_at = "2026-11-29T06:00:00Z";
    uint64_t job_id = 1;
    for (const char* arch : {"amd64", "arm64"}) {
      TestImage image = MakeTestImage({"linux", arch, ""}, std::string(arch) + repo, docker);
      EXPECT_TRUE(client_->PushBlob(repo, image.config.digest, image.config_bytes).ok());
      EXPECT_TRUE(client_->PushBlob(repo, image.layers[0].digest, image.layer_bytes[0]).ok());
      EXPECT_TRUE(client_
                      ->PutManifest(repo, image.manifest.digest, image.manifest.media_type,
                                    image.manifest_bytes)
                      .ok());
      JobRecord job;
      job.id = job_id++;
      job.build_id = build.id;
      job.platform = image.platform;
      job.state = "succeeded";
      job.manifest = {image.manifest.media_type, image.manifest.digest,
                      static_cast<uint64_t>(image.manifest.size)};
      build.jobs.push_back(job);
    }
    return build;
  }

  Result<Index> IndexUnderLatest(const std::string& repo) {
    Result<FetchedManifest> fetched = client_->GetManifest(repo, "latest");
    if (!fetched.ok()) return fetched.status();
    return ParseIndex(fetched->bytes);
  }

  test::RegistryServer registry_;
  std::unique_ptr<RegistryClient> client_;
};

TEST_F(MergerAnnotationsTest, OciIndexCarriesCreatedSourceRevisionAndCustomAnnotations) {
  BuildRecord build = PushedBuild("oci-app", /*docker=*/false);
  build.spec.source = "https://git.example.com/app.git";
  build.spec.revision = std::string(40, 'a');
  build.spec.index_annotations = {{"org.opencontainers.image.revision", "v1.2.3"},
                                  {"org.example.team", "builds"}};
  Result<PushedIndex> pushed = Merger().MergeAndPushIndex(build);
  ASSERT_TRUE(pushed.ok()) << pushed.status().message();
  EXPECT_EQ(pushed->media_type, std::string(kOciIndex));
  Result<Index> index = IndexUnderLatest("oci-app");
  ASSERT_TRUE(index.ok()) << index.status().message();
  EXPECT_EQ(index->annotations,
            (std::map<std::string, std::string>{
                {"org.opencontainers.image.created", "2026-11-29T06:00:00Z"},
                {"org.opencontainers.image.source", "https://git.example.com/app.git"},
                {"org.opencontainers.image.revision", "v1.2.3"},  // the explicit one wins
                {"org.example.team", "builds"}}));

  // Merging again (after a coordinator restart) pushes the very same bytes.
  Result<PushedIndex> again = Merger().MergeAndPushIndex(build);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->digest, pushed->digest);
}

TEST_F(MergerAnnotationsTest, DockerListRefusesRequestedAnnotationsAndPushesNothing) {
  BuildRecord build = PushedBuild("docker-app", /*docker=*/true);
  build.spec.index_annotations = {{"org.example.team", "builds"}};
  build.spec.revision = std::string(40, 'a');
  Result<PushedIndex> pushed = Merger().MergeAndPushIndex(build);
  ASSERT_FALSE(pushed.ok());
  EXPECT_EQ(pushed.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(pushed.status().message().find(
                "Docker manifest list, which cannot carry annotations; the build asked for index "
                "annotations (org.example.team, org.opencontainers.image.revision)"),
            std::string::npos)
      << pushed.status().message();
  EXPECT_FALSE(client_->GetManifest("docker-app", "latest").ok()) << "a list was pushed";

  // Without requested annotations the list is pushed; the coordinator's own created time
  // has no place in it and is left out.
  build.spec.index_annotations.clear();
  build.spec.revision.clear();
  pushed = Merger().MergeAndPushIndex(build);
  ASSERT_TRUE(pushed.ok()) << pushed.status().message();
  EXPECT_EQ(pushed->media_type, std::string(kDockerManifestList));
  Result<Index> index = IndexUnderLatest("docker-app");
  ASSERT_TRUE(index.ok()) << index.status().message();
  EXPECT_TRUE(index->annotations.empty());
}

// The index is made from what the agents reported; a child the registry holds with another
// size or media type than reported fails the merge, and no tag is written.
TEST_F(MergerAnnotationsTest, ChildHeldOtherwiseThanReportedFailsTheMerge) {
  BuildRecord build = PushedBuild("misreported", /*docker=*/false);
  build.jobs[1].manifest.size += 1;
  Result<PushedIndex> pushed = Merger().MergeAndPushIndex(build);
  ASSERT_FALSE(pushed.ok());
  EXPECT_EQ(pushed.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(pushed.status().message().find("but its agent reported"), std::string::npos)
      << pushed.status().message();
  EXPECT_FALSE(client_->GetManifest("misreported", "latest").ok()) << "an index was pushed";

  build.jobs[1].manifest.size -= 1;
  build.jobs[1].manifest.media_type = std::string(kDockerManifest);
  pushed = Merger().MergeAndPushIndex(build);
  ASSERT_FALSE(pushed.ok());
  EXPECT_EQ(pushed.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_FALSE(client_->GetManifest("misreported", "latest").ok()) << "an index was pushed";

  // As reported, and merged twice by one Merger (its clients kept): the same index.
  build.jobs[1].manifest.media_type = std::string(kOciManifest);
  Merger merger;
  Result<PushedIndex> first = merger.MergeAndPushIndex(build);
  ASSERT_TRUE(first.ok()) << first.status().message();
  Result<PushedIndex> second = merger.MergeAndPushIndex(build);
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(first->digest, second->digest);
}

}  // namespace
}  // namespace manifold
