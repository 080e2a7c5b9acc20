#include "coordinator/assignments.h"

#include <gtest/gtest.h>

namespace manifold {
namespace {

Platform Of(const char* text) { return ParsePlatform(text).value(); }

std::shared_ptr<BuildSpec> Spec() {
  auto spec = std::make_shared<BuildSpec>();
  spec->tags = {"registry.test/team/app:1", "registry.test/team/app:latest", "mirror.test/app:1"};
  spec->context_digest = "sha256:" + std::string(64, 'c');
  spec->dockerfile = "FROM scratch\n";
  spec->dockerfile_path = "build/Dockerfile";
  spec->build_args = {{"A", "1"}};
  spec->target = "final";
  spec->labels = {{"l", "v"}};
  spec->manifest_annotations = {{"org.opencontainers.image.title", "app"}};
  spec->no_cache = true;
  spec->pull = true;
  return spec;
}

TEST(AssignmentsTest, RepositoriesFollowTheTagsOnceEach) {
  EXPECT_EQ(Repositories(*Spec()),
            (std::vector<std::string>{"registry.test/team/app", "mirror.test/app"}));
}

TEST(AssignmentsTest, TheAssignMessageCarriesTheJobAndEverythingTheAgentNeeds) {
  QueuedJob job{42, 7, Of("linux/arm64"), Spec()};
  ContextSource contexts{"https://coordinator.test:7080",
                         [](const std::string& digest) { return "?grant=" + digest.substr(7, 4); }};
  std::map<std::string, std::string> secrets = {{"npm", "token"}};
  AssignMsg assign = MakeAssignMsg(job, 3, contexts, &secrets);
  EXPECT_EQ(assign.job, (JobRef{42, 3}));
  EXPECT_EQ(assign.build_id, 7u);
  EXPECT_EQ(assign.platform, Of("linux/arm64"));
  EXPECT_EQ(assign.context_url, "https://coordinator.test:7080/v1/contexts/sha256:" +
                                    std::string(64, 'c') + "?grant=cccc");
  EXPECT_EQ(assign.dockerfile, "FROM scratch\n");
  EXPECT_EQ(assign.dockerfile_path, "build/Dockerfile");
  EXPECT_EQ(assign.build_args, job.spec->build_args);
  EXPECT_EQ(assign.target, "final");
  EXPECT_EQ(assign.repositories, Repositories(*job.spec));
  EXPECT_EQ(assign.labels, job.spec->labels);
  EXPECT_EQ(assign.annotations, job.spec->manifest_annotations);
  EXPECT_TRUE(assign.no_cache);
  EXPECT_TRUE(assign.pull);
  EXPECT_EQ(assign.secrets, secrets);
  EXPECT_TRUE(MakeAssignMsg(job, 1, {"http://c", nullptr}, nullptr).secrets.empty());
}

TEST(AssignmentsTest, APassDescribesEachPlacementForTheJobsRecord) {
  WaitingJobs pending;
  pending[1] = {QueuedJob{1, 1, Of("linux/amd64"), Spec()}, {}, "registry.test/team/app"};
  pending[2] = {QueuedJob{2, 1, Of("linux/arm64"), Spec()}, {}, "registry.test/team/app"};
  pending[3] = {QueuedJob{3, 2, Of("linux/s390x"), Spec()}, {}, ""};  // nobody serves it
  pending[2].native_wait_over = true;
  std::vector<SchedulerAgent> agents = {
      {"x86", {{Of("linux/amd64"), false}, {Of("linux/arm64"), true}}, 2, {}},
  };
  agents[0].warm.insert({"registry.test/team/app", Of("linux/amd64")});
  std::vector<JobAssignment> planned =
      PlanSchedulingPass(pending, agents, {}, std::chrono::seconds(0), LoopClock::now());
  ASSERT_EQ(planned.size(), 2u);
  EXPECT_EQ(planned[0].job_id, 1u);
  EXPECT_EQ(planned[0].agent_id, "x86");
  EXPECT_FALSE(planned[0].emulated);
  EXPECT_EQ(planned[0].placement, "native, warm cache for registry.test/team/app");
  EXPECT_EQ(planned[1].job_id, 2u);
  EXPECT_TRUE(planned[1].emulated);
  EXPECT_EQ(planned[1].placement,
            "emulated (--emulation fallback, no native agent took it in time)");
}

TEST(AssignmentsTest, AnAgentsCacheIsWarmForWhatItBuiltWithinTheWindow) {
  const LoopClock::time_point t0{};
  const auto window = std::chrono::hours(6);
  std::map<std::string, WarmCache> warm;
  NoteWarm(warm["a1"], "registry.test/team/app", Of("linux/amd64"), t0, window);
  auto cache_of = [&](const char* agent, const char* repository, const char* platform,
                      LoopClock::duration later, bool registry = false) {
    return CacheOf(warm, agent, repository, Of(platform), t0 + later, window, registry);
  };
  EXPECT_EQ(cache_of("a1", "registry.test/team/app", "linux/amd64", window), JobCache::kWarm);
  EXPECT_EQ(cache_of("a1", "registry.test/team/app", "linux/amd64", window + window),
            JobCache::kCold);
  EXPECT_EQ(cache_of("a1", "registry.test/team/app", "linux/arm64", {}), JobCache::kCold);
  EXPECT_EQ(cache_of("a1", "registry.test/team/other", "linux/amd64", {}), JobCache::kCold);
  EXPECT_EQ(cache_of("a2", "registry.test/team/app", "linux/amd64", {}), JobCache::kCold);
  // A fresh registry cache makes a cold agent's job a registry one, and a warm agent's
  // stays warm: its own store is the better cache.
  EXPECT_EQ(cache_of("a2", "registry.test/team/app", "linux/amd64", {}, true), JobCache::kRegistry);
  EXPECT_EQ(cache_of("a1", "registry.test/team/app", "linux/amd64", window + window, true),
            JobCache::kRegistry);
  EXPECT_EQ(cache_of("a1", "registry.test/team/app", "linux/amd64", window, true), JobCache::kWarm);
  EXPECT_STREQ(JobCacheName(JobCache::kWarm), "warm");
  EXPECT_STREQ(JobCacheName(JobCache::kRegistry), "registry");
  EXPECT_STREQ(JobCacheName(JobCache::kCold), "cold");
}

}  // namespace
}  // namespace manifold
