#include <gtest/gtest.h>

#include "cli/build_status.h"
#include "cli/format.h"

namespace manifold {
namespace {

BuildInfo FailedBuild() {
  BuildInfo build;
  build.id = 12;
  build.state = "failed";
  build.platforms = {"linux/amd64", "linux/arm64"};
  build.tags = {"127.0.0.1:5000/hello:latest"};
  build.context = "sha256:c";
  build.error = "linux/arm64: RUN false: exit status 1";
  build.created_at = "2026-11-29T03:00:00Z";
  JobInfo amd64;
  amd64.platform = "linux/amd64";
  amd64.state = "succeeded";
  amd64.attempt = 1;
  amd64.agent = "host-a";
  amd64.manifest_digest = "sha256:a";
  JobInfo arm64;
  arm64.platform = "linux/arm64";
  arm64.state = "failed";
  arm64.attempt = 2;
  arm64.agent = "host-b";
  arm64.emulated = true;
  arm64.placement = "emulated (--emulation allow)";
  arm64.error = "RUN false: exit status 1";
  build.jobs = {amd64, arm64};
  return build;
}

TEST(FormatBuildStatus, ShowsBuildAndEveryJob) {
  EXPECT_EQ(FormatBuildStatus(FailedBuild()),
            "Build:     12\n"
            "State:     failed\n"
            "Platforms: linux/amd64, linux/arm64\n"
            "Tags:      127.0.0.1:5000/hello:latest\n"
            "Context:   sha256:c\n"
            "Error:     linux/arm64: RUN false: exit status 1\n"
            "Created:   2026-11-29T03:00:00Z\n"
            "\n"
            "Jobs:\n"
            "  linux/amd64\n"
            "    State:    succeeded\n"
            "    Attempt:  1\n"
            "    Agent:    host-a\n"
            "    Digest:   sha256:a\n"
            "  linux/arm64\n"
            "    State:    failed\n"
            "    Attempt:  2\n"
            "    Agent:    host-b (emulated)\n"
            "    Placed:   emulated (--emulation allow)\n"
            "    Error:    RUN false: exit status 1\n");
}

TEST(FormatBuildStatus, AWaitingJobsPlacementSaysWhyItWaits) {
  BuildInfo build;
  build.id = 4;
  build.state = "queued";
  JobInfo job;
  job.platform = "linux/arm/v7";
  job.state = "pending";
  job.placement = "no connected agent serves linux/arm/v7 (agents serve linux/amd64)";
  build.jobs = {job};
  std::string text = FormatBuildStatus(build);
  EXPECT_NE(text.find("    Agent:    none yet\n"
                      "    Waiting:  no connected agent serves linux/arm/v7 (agents serve "
                      "linux/amd64)\n"),
            std::string::npos)
      << text;
}

TEST(FormatBuildStatus, SucceededBuildShowsItsIndex) {
  BuildInfo build;
  build.id = 3;
  build.state = "succeeded";
  build.index_digest = "sha256:i";
  build.index_media_type = "application/vnd.oci.image.index.v1+json";
  std::string text = FormatBuildStatus(build);
  EXPECT_NE(text.find("Index:     sha256:i (application/vnd.oci.image.index.v1+json)\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("Jobs:"), std::string::npos);
}

TEST(FormatBuildList, AlignedColumnsNewestFirstWithDurationAndAge) {
  BuildInfo older = FailedBuild();  // created 03:00:00, failed 03:02:05
  older.updated_at = "2026-11-29T03:02:05Z";
  BuildInfo newer = older;
  newer.id = 113;
  newer.state = "running";
  newer.platforms = {"linux/amd64"};
  newer.tags = {"a:1", "a:2"};
  newer.created_at = "2026-11-29T04:59:20Z";
  newer.updated_at = "2026-11-29T04:59:30Z";
  auto now = *ParseTimestamp("2026-11-29T05:00:00Z");
  // A running build's duration runs to now; a final one's stops at its last change.
  EXPECT_EQ(FormatBuildList({newer, older}, now),
            "ID   STATE    PLATFORMS                TAGS                         DURATION  AGE\n"
            "113  running  linux/amd64              a:1,a:2                      40s       40s\n"
            "12   failed   linux/amd64,linux/arm64  127.0.0.1:5000/hello:latest  2m05s     2h\n");
  EXPECT_EQ(FormatBuildList({}, now), "no builds yet\n");
  BuildInfo undated = newer;
  undated.created_at = "yesterday";
  EXPECT_NE(FormatBuildList({undated}, now).find("a:1,a:2  -         -\n"), std::string::npos)
      << FormatBuildList({undated}, now);
}

}  // namespace
}  // namespace manifold
