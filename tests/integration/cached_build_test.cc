// Builds the layer cache serves, on one real farm (ops/farm.sh: PostgreSQL, docker-registry,
// the coordinator and one linux/amd64 agent building with buildah): the pushed image still
// carries everything the request asked for, and both programs' /metrics tell cached builds
// from cold ones. What was pushed is read back with skopeo, an independent reader.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "tests/support/farm.h"
#include "tests/support/read_image.h"
#include "tests/support/temp_dir.h"

namespace manifold::test {
namespace {

using nlohmann::json;
using std::chrono::seconds;

constexpr const char* kAgent = "amd64-1";
constexpr const char* kPlatform = "linux/amd64";

class CachedBuildTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    farm_ = StartSuiteFarm({{std::string(kAgent) + ":" + kPlatform}, {}});
  }
  static void TearDownTestSuite() { farm_.reset(); }

  void SetUp() override { ASSERT_NE(farm_, nullptr) << "the farm did not come up"; }
  void TearDown() override {
    if (!HasFailure()) return;
    for (const char* name : {"coordinator", kAgent}) {
      std::cerr << "---- " << name << " log ----\n" << farm_->LogTail(name) << "\n";
    }
  }

  // A context whose every step after FROM the agent's layer cache can serve on a rebuild.
  static void WriteContext(const std::string& dir) {
    std::ofstream(dir + "/Dockerfile") << "FROM busybox\n"
                                          "COPY payload.txt /payload.txt\n"
                                          "RUN cat /payload.txt > /copied\n";
    std::ofstream(dir + "/payload.txt") << "the same bytes every time\n";
  }

  // `manifold build` of `dir` for the farm's one platform, tagged REGISTRY/`tag`.
  static CommandResult Build(const std::string& dir, const std::string& tag,
                             std::vector<std::string> options = {}) {
    std::vector<std::string> args = {
        "build",      "--platform", kPlatform, "-t", farm_->registry() + "/" + tag,
        "--progress", "plain"};
    args.insert(args.end(), options.begin(), options.end());
    args.push_back(dir);
    return farm_->Manifold(args, seconds(300));
  }

  // The platform's image manifest of the index pushed as REGISTRY/`reference`.
  static json PlatformManifest(const std::string& repository, const std::string& tag) {
    std::map<std::string, std::string> children =
        ChildrenByArch(RawManifest(farm_->registry() + "/" + repository + ":" + tag));
    if (children.count("amd64") == 0) {
      ADD_FAILURE() << repository << ":" << tag << " lists no amd64 image";
      return json::object();
    }
    return RawManifest(farm_->registry() + "/" + repository + "@" + children["amd64"]);
  }

  static std::string Scrape(const std::string& name) {
    Result<std::string> text = farm_->Metrics(name);
    EXPECT_TRUE(text.ok()) << name << ": " << text.status().message();
    return text.ok() ? *text : std::string();
  }

  static std::unique_ptr<Farm> farm_;
};

std::unique_ptr<Farm> CachedBuildTest::farm_;

// The pushed manifest's annotations are the agent's to write: buildah hands back the cached
// image, whose manifest has only what the build that made it asked for.
TEST_F(CachedBuildTest, RebuildFromTheLocalCacheCarriesTheRequestedManifestAnnotations) {
  TempDir context("manifold-cached-annotations");
  WriteContext(context.path());
  CommandResult cold =
      Build(context.path(), "honour:1", {"--annotation", "manifest:org.example.old=0"});
  ASSERT_EQ(cold.exit_code, 0) << cold.output;

  CommandResult warm =
      Build(context.path(), "honour:2",
            {"--annotation", "manifest:org.example.m=1", "--annotation", "index:org.example.i=2",
             "--annotation", "index,manifest:org.example.both=3"});
  ASSERT_EQ(warm.exit_code, 0) << warm.output;
  // The cache served both steps (COPY and RUN), as buildah's output says.
  size_t cached = 0;
  for (size_t at = warm.output.find("--> Using cache"); at != std::string::npos;
       at = warm.output.find("--> Using cache", at + 1)) {
    ++cached;
  }
  EXPECT_EQ(cached, 2u) << warm.output;

  json first = PlatformManifest("honour", "1");
  json second = PlatformManifest("honour", "2");
  EXPECT_EQ(second["config"], first["config"]) << "the cache did not serve the rebuild";
  EXPECT_EQ(second["layers"], first["layers"]) << "the cache did not serve the rebuild";
  EXPECT_EQ(first["annotations"].value("org.example.old", ""), "0") << first.dump();
  const json& annotations = second.value("annotations", json::object());
  // What the cold build asked for does not come back with its cached image.
  EXPECT_FALSE(annotations.contains("org.example.old")) << second.dump();
  EXPECT_EQ(annotations.value("org.example.m", ""), "1") << second.dump();
  EXPECT_EQ(annotations.value("org.example.both", ""), "3") << second.dump();
  EXPECT_FALSE(annotations.contains("org.example.i")) << second.dump();

  json index = RawManifest(farm_->registry() + "/honour:2");
  EXPECT_EQ(index["annotations"].value("org.example.i", ""), "2") << index.dump();
  EXPECT_EQ(index["annotations"].value("org.example.both", ""), "3") << index.dump();
}

// After a cold build and its cached rebuild, the coordinator has observed one of each,
// and the rebuild against the cold build's time; the agent exports its cache byte counters.
TEST_F(CachedBuildTest, MetricsTellTheCachedRebuildFromTheColdBuild) {
  const std::string platform = std::string("platform=\"") + kPlatform + "\"";
  auto count = [&](const std::string& text, const std::string& series) {
    return std::max(0.0, MetricSample(text, series));
  };
  const std::string cold_jobs =
      "manifold_job_cache_duration_seconds_count{cache=\"cold\"," + platform + "}";
  const std::string warm_jobs =
      "manifold_job_cache_duration_seconds_count{cache=\"warm\"," + platform + "}";
  const std::string warm_ratios = "manifold_job_cold_ratio_count{cache=\"warm\"," + platform + "}";
  std::string before = Scrape("coordinator");

  TempDir context("manifold-cached-metrics");
  WriteContext(context.path());
  CommandResult cold = Build(context.path(), "cache-metrics:1");
  ASSERT_EQ(cold.exit_code, 0) << cold.output;
  CommandResult warm = Build(context.path(), "cache-metrics:2");
  ASSERT_EQ(warm.exit_code, 0) << warm.output;

  std::string after = Scrape("coordinator");
  EXPECT_EQ(count(after, cold_jobs), count(before, cold_jobs) + 1) << after;
  EXPECT_EQ(count(after, warm_jobs), count(before, warm_jobs) + 1) << after;
  // The rebuild had a cold build of its repository and platform to be measured against.
  EXPECT_EQ(count(after, warm_ratios), count(before, warm_ratios) + 1) << after;

  std::string agent = Scrape(kAgent);
  EXPECT_EQ(MetricSample(agent, "manifold_agent_cache_bytes_pulled_total{" + platform + "}"), 0)
      << agent;
  EXPECT_EQ(MetricSample(agent, "manifold_agent_cache_bytes_pushed_total{" + platform + "}"), 0)
      << agent;
}

}  // namespace
}  // namespace manifold::test
