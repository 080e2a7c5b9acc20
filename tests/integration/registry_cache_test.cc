// The per-platform registry cache on a real farm (ops/farm.sh, real buildah 1.28): a
// project whose Dockerfile has `ARG TARGETARCH` and `COPY . .` before its expensive step is
// built on agent A with --cache-to/--cache-from; A drains, a fresh agent B with an empty
// store builds it again from the registry cache, every step a cache hit, giving the same
// layers; the cache is in the platform's own repository. A build with no cache flags uses
// the coordinator's --cache-repo-template, and a fresh agent that loads the farm's recent
// caches as it joins (warm start) needs no fetch in its first build. One farm (two linux/amd64
// agents, one running at a time) for the suite.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/oci.h"
#include "common/registry.h"
#include "tests/support/farm.h"
#include "tests/support/ports.h"
#include "tests/support/temp_dir.h"

namespace manifold::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kAgentA = "cache-a";
constexpr const char* kAgentB = "cache-b";
const std::string kPlatformLabel = "platform=\"linux/amd64\"";
const std::string kRegistryJobs =
    "manifold_job_cache_duration_seconds_count{cache=\"registry\"," + kPlatformLabel + "}";

// Tells builds apart where they share a repository: each test writes its own line.
std::string Dockerfile(const std::string& marker) {
  return "FROM busybox\n"
         "ARG TARGETARCH\n"
         "COPY . /src\n"
         "RUN echo " +
         marker + "-$TARGETARCH > /expensive && sleep 2\n";
}

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class RegistryCacheTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // The template names the farm's registry, so its port is chosen here.
    const std::string port = std::to_string(FreeTcpPort());
    FarmOptions options;
    options.agents = {std::string(kAgentA) + ":linux/amd64", std::string(kAgentB) + ":linux/amd64"};
    options.env = {{"MANIFOLD_FARM_REGISTRY_PORT", port},
                   {"MANIFOLD_CACHE_REPO_TEMPLATE", "127.0.0.1:" + port + "/cache/{repo}"}};
    farm_ = StartSuiteFarm(options);
  }
  static void TearDownTestSuite() { farm_.reset(); }

  void SetUp() override { ASSERT_NE(farm_, nullptr) << "the farm did not come up"; }
  void TearDown() override {
    if (!HasFailure() || !farm_) return;
    for (const char* name : {"coordinator", kAgentA, kAgentB}) {
      std::cerr << "---- " << name << " ----\n" << farm_->LogTail(name) << "\n";
    }
  }

  // Stops `name` (draining it) if it runs.
  static void StopAgent(const std::string& name) {
    if (farm_->Pid(name) != 0) {
      ASSERT_TRUE(farm_->Stop(name).ok()) << name;
    }
  }
  // Starts `name` with an empty container store, as a new autoscaled node would; with
  // `warm_start` it loads the farm's recent caches as it joins (agent/warm_start.h).
  static void StartFresh(const std::string& name, bool warm_start = true) {
    StopAgent(name);
    const std::string storage = farm_->dir() + "/farm/agents/" + name + "/storage";
    for (const char* part : {"graph", "run"}) {
      std::error_code ec;
      fs::remove_all(storage + "/" + part, ec);
      fs::create_directories(storage + "/" + part);
    }
    Status started = farm_->Start(name, {{"MANIFOLD_WARM_START", warm_start ? "true" : "false"}});
    ASSERT_TRUE(started.ok()) << started.message();
  }

  // `manifold build` of a project (its Dockerfile and one source file) for linux/amd64.
  static CommandResult Build(const std::string& dockerfile, const std::string& tag,
                             std::vector<std::string> flags = {}) {
    TempDir project;
    std::ofstream(project.path() + "/Dockerfile") << dockerfile;
    std::ofstream(project.path() + "/main.c") << "int main(void) { return 0; }\n";
    std::vector<std::string> args = {
        "build",      "--platform", "linux/amd64", "-t", farm_->registry() + "/" + tag,
        "--progress", "plain"};
    args.insert(args.end(), flags.begin(), flags.end());
    args.push_back(project.path());
    return farm_->Manifold(args);
  }

  // The linux/amd64 image manifest that `repository:tag` lists, as JSON; null if none.
  static json ImageManifest(const std::string& repository, const std::string& tag) {
    RegistryClient registry(farm_->registry());
    Result<FetchedManifest> index = registry.GetManifest(repository, tag);
    if (!index.ok()) return nullptr;
    Result<Index> parsed = ParseIndex(index->bytes);
    if (!parsed.ok() || parsed->manifests.empty()) return nullptr;
    Result<FetchedManifest> image = registry.GetManifest(repository, parsed->manifests[0].digest);
    return image.ok() ? json::parse(image->bytes, nullptr, false) : json(nullptr);
  }
  // The layers (diff ids) of the linux/amd64 image that `repository:tag` lists.
  static std::vector<std::string> DiffIds(const std::string& repository, const std::string& tag) {
    json image = ImageManifest(repository, tag);
    if (!image.is_object()) return {"no image"};
    Result<std::string> config =
        RegistryClient(farm_->registry()).GetBlob(repository, image["config"].value("digest", ""));
    if (!config.ok()) return {"no config"};
    return json::parse(*config)["rootfs"]["diff_ids"].get<std::vector<std::string>>();
  }
  // The placement of the only job of the build whose `manifold build` output this is.
  static std::string Placement(const std::string& output) {
    size_t at = output.find("build ");
    if (at == std::string::npos) return "";
    Result<json> build = farm_->GetBuild(std::stoull(output.substr(at + 6)));
    if (!build.ok() || (*build)["jobs"].empty()) return "";
    return (*build)["jobs"][0].value("placement", "");
  }
  // One series of the /metrics of `name` (the coordinator or an agent); 0 when absent.
  static double Sample(const std::string& name, const std::string& series) {
    Result<std::string> text = farm_->Metrics(name);
    if (!text.ok()) return -1;
    return std::max(0.0, MetricSample(*text, series));
  }
  static bool HasManifest(const std::string& repository, const std::string& tag) {
    return RegistryClient(farm_->registry()).GetManifest(repository, tag).ok();
  }

  static std::unique_ptr<Farm> farm_;
};

std::unique_ptr<Farm> RegistryCacheTest::farm_;

TEST_F(RegistryCacheTest, AFreshAgentBuildsFromTheRegistryCacheOfItsPlatform) {
  StopAgent(kAgentB);
  ASSERT_NE(farm_->Pid(kAgentA), 0);
  const std::string cache = farm_->registry() + "/flags-cache/app";
  const std::vector<std::string> flags = {"--cache-to", "type=registry,ref=" + cache + ",mode=max",
                                          "--cache-from", "type=registry,ref=" + cache};
  const std::string dockerfile = Dockerfile("flags");
  CommandResult first = Build(dockerfile, "flags/app:v1", flags);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_EQ(Count(first.output, "--> Using cache"), 0) << first.output;
  const std::string platform_cache = cache + "/linux-amd64:latest";
  EXPECT_NE(first.output.find("pushed registry cache to " + platform_cache), std::string::npos)
      << first.output;
  EXPECT_GT(Sample(kAgentA, "manifold_agent_cache_bytes_pushed_total{" + kPlatformLabel + "}"), 0);
  const double registry_jobs_before = Sample("coordinator", kRegistryJobs);

  // A drains and goes; B comes up with nothing in its store, and its first job loads the
  // cache (no warm start: that is the next test).
  StopAgent(kAgentA);
  StartFresh(kAgentB, /*warm_start=*/false);
  // What the request asks for is honoured whatever the cache serves (issue 19).
  std::vector<std::string> annotated = flags;
  annotated.insert(annotated.end(), {"--annotation", "manifest:org.example.m=1"});
  CommandResult second = Build(dockerfile, "flags/app:v2", annotated);
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("fetched registry cache " + platform_cache), std::string::npos)
      << second.output;
  // ARG, COPY and the expensive RUN: every step from the cache.
  EXPECT_EQ(Count(second.output, "--> Using cache"), 3) << second.output;
  EXPECT_EQ(second.output.find("flags-amd64"), std::string::npos)
      << "the expensive step ran again:\n"
      << second.output;
  EXPECT_GT(Sample(kAgentB, "manifold_agent_cache_bytes_pulled_total{" + kPlatformLabel + "}"), 0);
  EXPECT_EQ(Sample("coordinator", kRegistryJobs), registry_jobs_before + 1)
      << "the job that started from the registry cache is not counted as such";
  EXPECT_NE(Placement(second.output)
                .find("native, registry cache for " + farm_->registry() + "/flags/app pushed "),
            std::string::npos)
      << "placement does not say it started from the registry cache";
  EXPECT_EQ(ImageManifest("flags/app", "v2")["annotations"].value("org.example.m", ""), "1")
      << "a build from the registry cache lost the requested annotation";

  // B is warm now: the next build with the same flags does not pull the cache again.
  const double pulled =
      Sample(kAgentB, "manifold_agent_cache_bytes_pulled_total{" + kPlatformLabel + "}");
  CommandResult third = Build(dockerfile, "flags/app:v3", flags);
  ASSERT_EQ(third.exit_code, 0) << third.output;
  EXPECT_NE(third.output.find("registry cache " + platform_cache +
                              ": its 3 step image(s) are in this agent's store already"),
            std::string::npos)
      << third.output;
  EXPECT_EQ(Count(third.output, "--> Using cache"), 3) << third.output;
  // Only the index was read.
  EXPECT_LT(Sample(kAgentB, "manifold_agent_cache_bytes_pulled_total{" + kPlatformLabel + "}"),
            pulled + 4096);
  std::vector<std::string> v1 = DiffIds("flags/app", "v1");
  EXPECT_EQ(DiffIds("flags/app", "v2"), v1) << "the same image apart from timestamps";
  EXPECT_EQ(v1.size(), 3u) << "busybox, COPY and RUN";

  // The cache is the platform's own repository, not the ref itself.
  EXPECT_TRUE(HasManifest("flags-cache/app/linux-amd64", "latest"));
  EXPECT_FALSE(HasManifest("flags-cache/app", "latest"));
}

// A fresh agent loads the farm's most recent registry caches of its platform as it joins,
// so its first build of a repository is as a warm agent's: it reads only the cache's index.
TEST_F(RegistryCacheTest, AFreshAgentStartsWarmWithTheFarmsRecentCaches) {
  StopAgent(kAgentB);
  StartFresh(kAgentA);
  const std::string dockerfile = Dockerfile("warm-start");
  CommandResult first = Build(dockerfile, "warm/app:v1");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const std::string platform_cache = farm_->registry() + "/cache/warm/app/linux-amd64:latest";
  ASSERT_NE(first.output.find("pushed registry cache to " + platform_cache), std::string::npos)
      << first.output;

  StopAgent(kAgentA);
  StartFresh(kAgentB);
  // Submitted at once: the job waits for the warm start's load of its cache, the newest.
  CommandResult second = Build(dockerfile, "warm/app:v2");
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("registry cache " + platform_cache +
                               ": its 3 step image(s) are in this agent's store already"),
            std::string::npos)
      << second.output;
  EXPECT_EQ(second.output.find("fetched registry cache"), std::string::npos) << second.output;
  EXPECT_EQ(Count(second.output, "--> Using cache"), 3) << second.output;
  EXPECT_EQ(second.output.find("warm-start-amd64"), std::string::npos)
      << "the expensive step ran again:\n"
      << second.output;
  EXPECT_GE(Sample(kAgentB, "manifold_agent_warm_start_caches_total{" + kPlatformLabel +
                                ",result=\"loaded\"}"),
            1);
  EXPECT_EQ(DiffIds("warm/app", "v2"), DiffIds("warm/app", "v1"));
}

// RUN --mount=type=cache contents travel with the registry cache: pushed when the agent
// that has them drains, pulled by a fresh agent before its first build of the repository.
TEST_F(RegistryCacheTest, CacheMountsOfADrainedAgentReachAFreshOne) {
  StopAgent(kAgentB);
  StartFresh(kAgentA);
  // The step runs in every build (its build arg changes) and says what the mount held.
  const std::string dockerfile =
      "FROM busybox\n"
      "ARG N\n"
      "RUN --mount=type=cache,target=/cache echo \"build $N found: $(cat /cache/note 2>/dev/null "
      "|| echo nothing)\" && echo \"left by build $N\" > /cache/note\n";
  CommandResult first = Build(dockerfile, "mounts/app:1", {"--build-arg", "N=1"});
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("build 1 found: nothing"), std::string::npos) << first.output;

  StopAgent(kAgentA);  // drains: pushes the mounts to the template's cache repository
  StartFresh(kAgentB);
  CommandResult second = Build(dockerfile, "mounts/app:2", {"--build-arg", "N=2"});
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("pulled cache mounts from " + farm_->registry() +
                               "/cache/mounts/app/linux-amd64"),
            std::string::npos)
      << second.output;
  EXPECT_NE(second.output.find("build 2 found: left by build 1"), std::string::npos)
      << second.output;
  EXPECT_TRUE(HasManifest("cache/mounts/app/linux-amd64", "cache-mounts"));
}

TEST_F(RegistryCacheTest, WithoutFlagsTheCoordinatorsTemplateIsTheCache) {
  StopAgent(kAgentA);
  StartFresh(kAgentB);
  const std::string dockerfile = Dockerfile("template");
  CommandResult first = Build(dockerfile, "tmpl/app:v1");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const std::string platform_cache = farm_->registry() + "/cache/tmpl/app/linux-amd64:latest";
  EXPECT_NE(first.output.find("pushed registry cache to " + platform_cache), std::string::npos)
      << first.output;

  StartFresh(kAgentB);
  CommandResult second = Build(dockerfile, "tmpl/app:v2");
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_EQ(Count(second.output, "--> Using cache"), 3) << second.output;
  EXPECT_TRUE(HasManifest("cache/tmpl/app/linux-amd64", "latest"));
}

}  // namespace
}  // namespace manifold::test
