// The registry cache's options, per-platform refs, template default and placement.
#include "common/registry_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "agent/buildah_cache.h"
#include "common/layout.h"
#include "common/oci.h"
#include "coordinator/assignments.h"
#include "coordinator/cache_plan.h"
#include "tests/support/temp_dir.h"

namespace manifold {
namespace {

using namespace std::chrono_literals;

Platform P(const char* text) { return *ParsePlatform(text); }

TEST(RegistryCacheTest, ParsesBuildxSyntax) {
  Result<CacheOption> to = ParseCacheOption("type=registry,ref=reg.test:5000/cache/app,mode=max",
                                            /*to=*/true);
  ASSERT_TRUE(to.ok()) << to.status().message();
  EXPECT_EQ(to->ref, "reg.test:5000/cache/app");
  EXPECT_EQ(to->mode, "max");
  Result<CacheOption> to_min = ParseCacheOption("type=registry,ref=reg.test/cache/app:main", true);
  ASSERT_TRUE(to_min.ok());
  EXPECT_EQ(to_min->mode, "min");  // buildx's default
  Result<CacheOption> bare = ParseCacheOption("reg.test/cache/app", /*to=*/false);
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->ref, "reg.test/cache/app");
  EXPECT_EQ(bare->mode, "");
}

TEST(RegistryCacheTest, RefusesWhatIsNotARegistryCacheNamingWhatIs) {
  for (const std::string& text :
       std::vector<std::string>{"type=local,src=/tmp/cache", "type=gha", "type=inline",
                                "type=s3,ref=x", "type=registry,ref=reg.test/app,compression=zstd",
                                "type=registry", "type=registry,ref=Reg.Test/UPPER",
                                "type=registry,ref=reg.test/app@sha256:" + std::string(64, 'a')}) {
    Result<CacheOption> option = ParseCacheOption(text, true);
    ASSERT_FALSE(option.ok()) << text;
    EXPECT_EQ(option.status().code(), Status::Code::kInvalidArgument) << text;
    if (text.find("UPPER") == std::string::npos && text.find("sha256") == std::string::npos) {
      EXPECT_NE(option.status().message().find("type=registry,ref=REPO"), std::string::npos)
          << option.status().message();
    }
  }
  EXPECT_FALSE(ParseCacheOption("type=registry,ref=reg.test/app,mode=all", true).ok());
  EXPECT_FALSE(ParseCacheOption("type=registry,ref=reg.test/app,mode=max", false).ok())
      << "mode is a --cache-to key";
}

TEST(RegistryCacheTest, EachPlatformHasItsOwnRepositoryKeepingTheTag) {
  EXPECT_EQ(PlatformCacheRef("reg.test:5000/cache/app", P("linux/arm64")),
            "reg.test:5000/cache/app/linux-arm64:latest");
  EXPECT_EQ(PlatformCacheRef("reg.test/cache/app:main", P("linux/amd64")),
            "reg.test/cache/app/linux-amd64:main");
  EXPECT_EQ(PlatformCacheRef("reg.test/cache/app", P("linux/arm/v7")),
            "reg.test/cache/app/linux-arm-v7:latest");
  for (const char* platform : {"linux/arm64", "linux/amd64", "linux/arm/v7", "linux/386"}) {
    EXPECT_TRUE(ValidateCacheRef(PlatformCacheRef("reg.test/c", P(platform))).ok()) << platform;
  }
}

TEST(RegistryCacheTest, BuildFlagsResolvePerPlatformAndTheTemplateIsTheDefault) {
  CacheDefaults defaults{"reg.test/cache/{repo}", 7 * 24h};
  BuildSpec flags;
  flags.cache_from = {"reg.test/c1", "reg.test/c2:x"};
  flags.cache_to = "reg.test/c1";
  flags.cache_mode = "max";
  RegistryCacheSpec cache =
      ResolveRegistryCache(flags, P("linux/arm64"), "reg.test/team/app", defaults);
  EXPECT_EQ(cache,
            (RegistryCacheSpec{{"reg.test/c1/linux-arm64:latest", "reg.test/c2/linux-arm64:x"},
                               "reg.test/c1/linux-arm64:latest",
                               "max",
                               7 * 86400}));

  BuildSpec none;
  cache = ResolveRegistryCache(none, P("linux/amd64"), "reg.test/team/app", defaults);
  EXPECT_EQ(cache.from, (std::vector<std::string>{"reg.test/cache/team/app/linux-amd64:latest"}));
  EXPECT_EQ(cache.to, "reg.test/cache/team/app/linux-amd64:latest");
  EXPECT_EQ(cache.mode, "min");

  EXPECT_EQ(ResolveRegistryCache(none, P("linux/amd64"), "reg.test/team/app", {}),
            (RegistryCacheSpec{}))
      << "no flags and no template: no cache";

  BuildSpec no_cache;
  no_cache.no_cache = true;
  cache = ResolveRegistryCache(no_cache, P("linux/amd64"), "reg.test/team/app", defaults);
  EXPECT_TRUE(cache.from.empty()) << "--no-cache reads no cache";
  EXPECT_EQ(cache.to, "reg.test/cache/team/app/linux-amd64:latest") << "but writes it, as buildx";
}

TEST(RegistryCacheTest, TemplateMustNameTheRepository) {
  EXPECT_TRUE(ValidateCacheRepoTemplate("reg.test:5000/cache/{repo}").ok());
  EXPECT_FALSE(ValidateCacheRepoTemplate("reg.test:5000/cache").ok());
  EXPECT_FALSE(ValidateCacheRepoTemplate("reg.test:5000/Cache/{repo}").ok());
}

TEST(RegistryCacheTest, PlacementPrefersTheWarmAgentThenRecordsARecentRegistryCache) {
  const auto now = LoopClock::now();
  auto spec = std::make_shared<BuildSpec>();
  WaitingJobs pending;
  pending[1] = {QueuedJob{1, 1, P("linux/arm64"), spec}, now, "reg.test/app"};
  auto agent = [](const char* id, bool warm) {
    SchedulerAgent a{id, {{P("linux/arm64"), false}}, 1};
    if (warm) a.warm.insert({"reg.test/app", P("linux/arm64")});
    return a;
  };
  CachePushTimes pushes{{{"reg.test/app", P("linux/arm64")}, now - 3min}};

  // A warm agent wins over a cold one with more free slots, and says why.
  std::vector<SchedulerAgent> agents = {agent("cold", false), agent("warm", true)};
  agents[0].free_slots = 4;
  auto planned = PlanSchedulingPass(pending, agents, pushes, 24h, now);
  ASSERT_EQ(planned.size(), 1u);
  EXPECT_EQ(planned[0].agent_id, "warm");
  EXPECT_EQ(planned[0].placement, "native, warm cache for reg.test/app");

  // No warm agent free: a cold one, which starts from the registry cache.
  planned = PlanSchedulingPass(pending, {agent("cold", false)}, pushes, 24h, now);
  ASSERT_EQ(planned.size(), 1u);
  EXPECT_EQ(planned[0].placement, "native, registry cache for reg.test/app pushed 3m ago");

  // Pushed longer ago than the TTL, or never: cold.
  planned = PlanSchedulingPass(pending, {agent("cold", false)}, pushes, 1min, now);
  EXPECT_EQ(planned[0].placement, "native, least loaded");
  planned = PlanSchedulingPass(pending, {agent("cold", false)}, {}, 24h, now);
  EXPECT_EQ(planned[0].placement, "native, least loaded");
  // A TTL of 0 takes any age.
  planned = PlanSchedulingPass(pending, {agent("cold", false)}, pushes, 0s, now);
  EXPECT_EQ(planned[0].placement, "native, registry cache for reg.test/app pushed 3m ago");
}

TEST(RegistryCacheTest, AFreshAgentIsToldTheNewestCachesOfItsPlatformsWithinTheTtl) {
  const auto now = LoopClock::now();
  CachePushTimes pushes{{{"reg.test/old", P("linux/arm64")}, now - 3h},
                        {{"reg.test/new", P("linux/arm64")}, now - 1min},
                        {{"reg.test/mid", P("linux/arm64")}, now - 10min},
                        {{"reg.test/new", P("linux/amd64")}, now - 10s},
                        {{"reg.test/unknown", P("linux/arm64")}, now}};
  CacheRefs refs{{{"reg.test/old", P("linux/arm64")}, "c/old/linux-arm64:latest"},
                 {{"reg.test/new", P("linux/arm64")}, "c/new/linux-arm64:latest"},
                 {{"reg.test/mid", P("linux/arm64")}, "c/mid/linux-arm64:latest"},
                 {{"reg.test/new", P("linux/amd64")}, "c/new/linux-amd64:latest"}};
  auto refs_of = [](const std::vector<WarmStartCache>& caches) {
    std::vector<std::string> names;
    for (const WarmStartCache& cache : caches) names.push_back(cache.cache_ref);
    return names;
  };
  // Newest first, only the agent's platforms, none without a known ref.
  EXPECT_EQ(refs_of(WarmStartCaches(pushes, refs, {P("linux/arm64")}, 0s, 10, now)),
            (std::vector<std::string>{"c/new/linux-arm64:latest", "c/mid/linux-arm64:latest",
                                      "c/old/linux-arm64:latest"}));
  // Within the TTL, and at most so many.
  EXPECT_EQ(refs_of(WarmStartCaches(pushes, refs, {P("linux/arm64")}, 1h, 10, now)),
            (std::vector<std::string>{"c/new/linux-arm64:latest", "c/mid/linux-arm64:latest"}));
  EXPECT_EQ(refs_of(WarmStartCaches(pushes, refs, {P("linux/arm64")}, 0s, 1, now)),
            (std::vector<std::string>{"c/new/linux-arm64:latest"}));
  EXPECT_TRUE(WarmStartCaches(pushes, refs, {P("linux/arm64")}, 0s, 0, now).empty());
  // An agent of two platforms hears of both; each entry names its own.
  std::vector<WarmStartCache> both =
      WarmStartCaches(pushes, refs, {P("linux/amd64"), P("linux/arm64")}, 0s, 2, now);
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(both[0].repository, "reg.test/new");
  EXPECT_EQ(both[0].platform, P("linux/amd64"));
  EXPECT_EQ(both[1].platform, P("linux/arm64"));
}

// Records what it runs and answers exit 0; with `stop_at_first`, the agent stops while the
// first command runs: it sets the cancel flag and answers Canceled, as SubprocessRunner does.
class StoppingRunner : public CommandRunner {
 public:
  Result<int> Run(const CommandSpec& spec, const std::function<void(std::string_view)>&,
                  const std::atomic<bool>* cancel) override {
    commands.push_back(spec.argv);
    if (stop_at_first && cancel != nullptr) {
      const_cast<std::atomic<bool>*>(cancel)->store(true);
      return Status::Canceled("canceled");
    }
    return 0;
  }
  bool stop_at_first = false;
  std::vector<std::vector<std::string>> commands;
};

TEST(RegistryCacheTest, AnImportStopsAtItsCancel) {
  test::TempDir dir("cache-import");
  const std::string layout = dir.path() + "/manifold-cache-abc";
  std::filesystem::create_directories(layout + "/blobs/sha256");
  nlohmann::json index = {{"schemaVersion", 2},
                          {"mediaType", std::string(kOciIndex)},
                          {"manifests", nlohmann::json::array()}};
  for (const char* name : {"cache-1", "cache-2", "cache-3"}) {
    index["manifests"].push_back({{"mediaType", std::string(kOciManifest)},
                                  {"digest", "sha256:" + std::string(64, 'a')},
                                  {"size", 2},
                                  {"annotations", {{std::string(kRefNameAnnotation), name}}}});
  }
  ASSERT_TRUE(WriteLayoutIndex(layout, index.dump()).ok());
  auto import = [&](StoppingRunner& runner, std::atomic<bool>* cancel) {
    ImportCacheImages(
        runner, "buildah", layout, "manifold-cache-abc", [](std::string_view) {}, cancel);
  };
  StoppingRunner runner;
  std::atomic<bool> cancel{false};
  import(runner, &cancel);
  EXPECT_EQ(runner.commands.size(), 3u) << "one pull per step image";
  // The agent stops during the first pull: it ends, and no other follows.
  StoppingRunner stopped;
  stopped.stop_at_first = true;
  import(stopped, &cancel);
  EXPECT_EQ(stopped.commands.size(), 1u);
  EXPECT_TRUE(cancel);
}

TEST(RegistryCacheTest, ReadsEachStepsImageFromBuildahOutput) {
  const std::string output =
      "STEP 1/4: FROM 127.0.0.1:5000/base:latest\n"
      "STEP 2/4: ARG TARGETARCH\n"
      "--> Using cache f817812f0418d92b9cbd4f25e409edd20a4c2019dbdcd039cc540f0d0fe720fd\n"
      "--> f817812f041\n"
      "STEP 3/4: COPY . /src\n"
      "--> 7bd6b2a31b8\n"
      "STEP 4/4: RUN echo expensive\n"
      "expensive\n"
      "COMMIT img1\n"
      "--> Pushing cache 127.0.0.1:5000/cache:9e4f\n"
      "--> 15add577efb\n"
      "Successfully tagged localhost/img1:latest\n";
  StepImages single;
  // Split anywhere, as output arrives.
  single.Add(output.substr(0, 100));
  single.Add(output.substr(100));
  EXPECT_EQ(single.Ids(false),
            (std::vector<std::string>{"f817812f041", "7bd6b2a31b8", "15add577efb"}));

  StepImages multi;
  multi.Add(
      "[1/2] STEP 1/2: FROM base AS build\n[1/2] STEP 2/2: RUN make\n--> aaa111\n"
      "[2/2] STEP 1/2: FROM base\n[2/2] STEP 2/2: COPY --from=build /out /out\n"
      "[2/2] COMMIT img\n--> bbb222\n");
  EXPECT_EQ(multi.Ids(false), (std::vector<std::string>{"bbb222"})) << "mode=min: the last stage";
  EXPECT_EQ(multi.Ids(true), (std::vector<std::string>{"aaa111", "bbb222"})) << "mode=max";
}

}  // namespace
}  // namespace manifold
