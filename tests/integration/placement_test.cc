// Placement on real farms (ops/farm.sh, real agents building with buildah): the emulation
// policy of a build against an agent that emulates linux/arm64 under QEMU on this x86-64
// host, and cache affinity between two linux/amd64 agents. The scheduler's rules alone
// are tested in tests/unit/scheduler_test.cc and, over real sockets, in coordinator_test.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>

#include "tests/support/farm.h"
#include "tests/support/temp_dir.h"

namespace manifold::test {
namespace {

using nlohmann::json;
using std::chrono::seconds;

// The one job of the latest build pushed to `tag`.
json JobOfBuildTagged(const Farm& farm, const std::string& tag) {
  Result<HttpResponse> list = farm.Api("GET", "/v1/builds?limit=20");
  if (!list.ok()) return json();
  json builds = json::parse(list->body, nullptr, false);
  if (!builds.is_object()) return json();
  for (const json& build : builds["builds"]) {
    for (const json& build_tag : build["tags"]) {
      if (build_tag != tag) continue;
      Result<json> full = farm.GetBuild(build.value("id", uint64_t{0}));
      if (full.ok() && (*full)["jobs"].size() == 1) return (*full)["jobs"][0];
    }
  }
  return json();
}

std::string Scrape(const Farm& farm, const std::string& name) {
  Result<std::string> text = farm.Metrics(name);
  EXPECT_TRUE(text.ok()) << name << ": " << text.status().message();
  return text.ok() ? *text : std::string();
}

void DumpLogs(const Farm& farm, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    std::cerr << "---- " << name << " log ----\n" << farm.LogTail(name) << "\n";
  }
}

TEST(PlacementFarmTest, EmulatedArm64AgentServesFallbackBuildsButNeverNeverBuilds) {
  // Only an emulated linux/arm64 agent; fallback after 2 s, queue timeout 6 s.
  Farm farm({{"arm64-1:linux/arm64"},
             {{"MANIFOLD_EMULATION_FALLBACK_WAIT", "2"}, {"MANIFOLD_QUEUE_TIMEOUT", "6"}}});
  Status up = farm.Up();
  ASSERT_TRUE(up.ok()) << up.message();

  std::string never_tag = farm.registry() + "/placement:never";
  CommandResult never =
      farm.Manifold({"build", "--platform", "linux/arm64", "--emulation", "never", "-t", never_tag,
                     "--progress", "plain", SourceDir() + "/examples/hello"},
                    seconds(120));
  EXPECT_NE(never.exit_code, 0) << never.output;
  EXPECT_NE(never.output.find("no native agent for this platform"), std::string::npos)
      << never.output;
  EXPECT_NE(never.output.find("--emulation never"), std::string::npos) << never.output;
  EXPECT_EQ(JobOfBuildTagged(farm, never_tag).value("agent", "?"), "");

  std::string fallback_tag = farm.registry() + "/placement:fallback";
  CommandResult fallback = farm.Manifold({"build", "--platform", "linux/arm64", "-t", fallback_tag,
                                          "--progress", "plain", SourceDir() + "/examples/hello"},
                                         seconds(300));
  ASSERT_EQ(fallback.exit_code, 0) << fallback.output;
  EXPECT_NE(fallback.output.find("[linux/arm64] built on aarch64"), std::string::npos)
      << fallback.output;
  json job = JobOfBuildTagged(farm, fallback_tag);
  EXPECT_EQ(job.value("agent", ""), "arm64-1") << job.dump();
  EXPECT_TRUE(job.value("emulated", false)) << job.dump();
  EXPECT_EQ(job.value("placement", ""),
            "emulated (--emulation fallback, no native agent took it in time)");
  if (HasFailure()) DumpLogs(farm, {"coordinator", "arm64-1"});
}

// Two builds of the same repository in a row: the second goes to the agent that built the
// first, whose buildah layer cache skips the slow step. The times are printed, not asserted;
// the agents' cache step counters and both programs' registry request counters are.
TEST(PlacementFarmTest, RebuildGoesToTheAgentWithTheWarmCache) {
  Farm farm({{"amd64-1:linux/amd64", "amd64-2:linux/amd64"}, {}});
  Status up = farm.Up();
  ASSERT_TRUE(up.ok()) << up.message();
  TempDir context("manifold-affinity");
  {
    std::ofstream dockerfile(context.path() + "/Dockerfile");
    dockerfile << "FROM busybox\n"
                  "RUN echo warming && sleep 6 && uname -m > /arch\n"
                  "ENV BUILT=yes\n";
  }
  auto build = [&](const std::string& tag) {
    auto start = std::chrono::steady_clock::now();
    CommandResult result = farm.Manifold(
        {"build", "--platform", "linux/amd64", "-t", tag, "--progress", "plain", context.path()},
        seconds(300));
    double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(result.exit_code, 0) << result.output;
    return elapsed;
  };
  // Two repositories at once, so each agent builds one (both have a single slot).
  std::string first = farm.registry() + "/affinity-a:1", second = farm.registry() + "/affinity-b:1";
  auto first_build = std::async(std::launch::async, build, first);
  auto second_build = std::async(std::launch::async, build, second);
  double cold_a = first_build.get(), cold_b = second_build.get();
  std::string agent_a = JobOfBuildTagged(farm, first).value("agent", "");
  std::string agent_b = JobOfBuildTagged(farm, second).value("agent", "");
  ASSERT_NE(agent_a, agent_b) << "both cold builds ran on " << agent_a;

  // Each agent ran both steps after FROM (RUN, ENV): two misses, no hit yet.
  const std::string hit =
      "manifold_agent_cache_steps_total{platform=\"linux/amd64\",result=\"hit\"}";
  const std::string miss =
      "manifold_agent_cache_steps_total{platform=\"linux/amd64\",result=\"miss\"}";
  for (const std::string& agent : {agent_a, agent_b}) {
    std::string text = Scrape(farm, agent);
    EXPECT_EQ(MetricSample(text, hit), 0) << agent << "\n" << text;
    EXPECT_EQ(MetricSample(text, miss), 2) << agent << "\n" << text;
  }

  // Rebuilds, one at a time with both agents idle: each goes back to its warm agent, so
  // one of them goes against the scheduler's tie-break by agent id.
  double warm_a = build(farm.registry() + "/affinity-a:2");
  double warm_b = build(farm.registry() + "/affinity-b:2");
  json job_a = JobOfBuildTagged(farm, farm.registry() + "/affinity-a:2");
  json job_b = JobOfBuildTagged(farm, farm.registry() + "/affinity-b:2");
  EXPECT_EQ(job_a.value("agent", ""), agent_a) << job_a.dump();
  EXPECT_EQ(job_b.value("agent", ""), agent_b) << job_b.dump();
  EXPECT_EQ(job_a.value("placement", ""),
            "native, warm cache for " + farm.registry() + "/affinity-a");
  EXPECT_EQ(job_b.value("placement", ""),
            "native, warm cache for " + farm.registry() + "/affinity-b");
  // The warm agents' metrics show the cache at work: both steps of each rebuild were hits.
  for (const std::string& agent : {agent_a, agent_b}) {
    std::string text = Scrape(farm, agent);
    EXPECT_EQ(MetricSample(text, hit), 2) << agent << "\n" << text;
    EXPECT_EQ(MetricSample(text, miss), 2) << agent << "\n" << text;
  }

  // Registry requests as the registry answered them. The agent's first push to its
  // repository found no blob (HEAD 404), uploaded each (POST 202, PUT 201) and put the
  // manifest (201); the rebuild's image, from the cache, found its blobs (HEAD 200).
  std::string agent_text = Scrape(farm, agent_a);
  auto agent_requests = [&](const std::string& operation, const std::string& status) {
    return MetricSample(agent_text, "manifold_agent_registry_requests_total{operation=\"" +
                                        operation + "\",platform=\"linux/amd64\",status=\"" +
                                        status + "\"}");
  };
  EXPECT_GE(agent_requests("blob_head", "404"), 2) << agent_text;
  EXPECT_EQ(agent_requests("blob_upload_start", "202"), agent_requests("blob_head", "404"))
      << agent_text;
  EXPECT_EQ(agent_requests("blob_upload", "201"), agent_requests("blob_head", "404")) << agent_text;
  EXPECT_GE(agent_requests("blob_head", "200"), 1) << agent_text;
  EXPECT_EQ(agent_requests("manifest_put", "201"), 2) << agent_text;
  // The coordinator checked each build's child with one HEAD, downloaded nothing, and put
  // four indexes.
  std::string coordinator_text = Scrape(farm, "coordinator");
  auto coordinator_requests = [&](const std::string& operation, const std::string& status) {
    return MetricSample(coordinator_text, "manifold_registry_requests_total{operation=\"" +
                                              operation + "\",status=\"" + status + "\"}");
  };
  EXPECT_EQ(coordinator_requests("manifest_head", "200"), 4) << coordinator_text;
  EXPECT_EQ(coordinator_requests("manifest_get", "200"), -1) << coordinator_text;  // absent
  EXPECT_EQ(coordinator_requests("blob_get", "200"), -1) << coordinator_text;
  EXPECT_EQ(coordinator_requests("manifest_put", "201"), 4) << coordinator_text;
  std::printf(
      "cache affinity: cold builds %.2f s and %.2f s, rebuilds on the warm agent %.2f s and %.2f "
      "s\n",
      cold_a, cold_b, warm_a, warm_b);
  if (HasFailure()) DumpLogs(farm, {"coordinator", "amd64-1", "amd64-2"});
}

}  // namespace
}  // namespace manifold::test
