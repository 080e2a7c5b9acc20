// The autoscaling loop end to end on one machine: the local scaler
// (ops/autoscaling/local-scaler.sh) reads max(manifold_desired_agents{platform=
// "linux/arm64"}) through a real Prometheus (Debian's, `ops/farm.sh start prometheus`,
// scraping every second) as KEDA does, starts arm64 agents with `ops/farm.sh add-agent`
// during a burst of builds, and afterwards drains idle ones back to the minimum. Every
// build must succeed in one attempt: scale-in drains only idle agents.
//
// The agents are synthetic (each build takes MANIFOLD_SYNTHETIC_BUILD_MS and builds
// nothing): the point is the control loop, not the builder. The scaler runs with the
// recipes' steps and a short poll and scale-in delay (scaling.env's defaults are minutes).
// bench/autoscale_bench runs the same burst with and without the scaler for the figures
// in docs/BENCHMARKS.md.
#include <dirent.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "tests/support/farm.h"
#include "tests/support/ports.h"
#include "tests/support/scaling_burst.h"
#include "tests/support/subprocess.h"
#include "tests/support/wait.h"

namespace manifold::test {
namespace {

using std::chrono::milliseconds;

constexpr int kMaxAgents = 4;

// The agents the farm's Prometheus target files name (targets/agents-NAME.yml).
std::set<std::string> AgentTargets(const Farm& farm) {
  std::set<std::string> names;
  DIR* dir = opendir((farm.farm_dir() + "/prometheus/targets").c_str());
  if (dir == nullptr) return names;
  while (dirent* entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name.rfind("agents-", 0) == 0 && name.size() > 11 && name.ends_with(".yml")) {
      names.insert(name.substr(7, name.size() - 11));
    }
  }
  closedir(dir);
  return names;
}

TEST(AutoscalingTest, ScalesOutForABurstAndDrainsBackToTheMinimum) {
  const int prometheus_port = FreeTcpPort();
  ASSERT_GT(prometheus_port, 0);
  Farm farm(BurstFarmOptions(prometheus_port, 5000));
  Status up = farm.Up();
  ASSERT_TRUE(up.ok()) << up.message();
  // The farm's down (its destructor, also when an assertion fails) stops Prometheus and
  // every agent the scaler added; the scaler, declared later, is stopped first.
  Status started = farm.Start("prometheus");
  ASSERT_TRUE(started.ok()) << started.message();
  ASSERT_TRUE(
      WaitFor([&] { return PrometheusValue(prometheus_port, kArm64DesiredQuery).has_value(); },
              milliseconds(20000), milliseconds(250)))
      << "Prometheus has no manifold_desired_agents from the coordinator\n"
      << farm.LogTail("prometheus");

  Subprocess scaler;
  Status scaling = StartLocalScaler(scaler, farm, prometheus_port, kMaxAgents);
  ASSERT_TRUE(scaling.ok()) << scaling.message();

  // 6 arm64 builds want 6 agents, more than the maximum; 2 amd64 builds run beside them.
  BurstOptions options;
  options.scaled_builds = 6;
  options.other_builds = 2;
  options.settle_agents = 1;  // the scaler's minimum (scaling.env)
  options.timeout = std::chrono::seconds(90);
  BurstResult burst = RunBurst(farm, options);
  std::string timeline;
  for (const std::string& line : burst.timeline) timeline += "  " + line + "\n";
  const std::string context =
      "arm64 agents over time:\n" + timeline + "scaler:\n" + scaler.LogTail(8192);

  ASSERT_TRUE(burst.status.ok()) << burst.status.message() << "\n" << context;
  EXPECT_EQ(burst.builds_succeeded, 8) << context;
  EXPECT_EQ(burst.builds_failed, 0) << context;
  EXPECT_TRUE(burst.retried_jobs.empty())
      << "jobs retried or requeued: " << nlohmann::json(burst.retried_jobs).dump() << "\n"
      << context;
  EXPECT_EQ(burst.agents_at_start, 1) << context;
  EXPECT_EQ(burst.peak_agents, kMaxAgents) << context;
  // Back at the minimum, the drained agents left the farm (`ops/farm.sh status` expects
  // only what runs) and Prometheus's targets.
  std::set<std::string> targets;
  CommandResult status;
  EXPECT_TRUE(WaitFor(
      [&] {
        targets = AgentTargets(farm);
        status = RunCommand({SourceDir() + "/ops/farm.sh", "status"}, milliseconds(10000),
                            {{"MANIFOLD_FARM_DIR", farm.farm_dir()}});
        return targets.size() == 2 && status.exit_code == 0;
      },
      milliseconds(15000), milliseconds(200)))
      << "agent targets: " << nlohmann::json(targets).dump() << "\nops/farm.sh status:\n"
      << status.output << context;
  EXPECT_EQ(targets.count("amd64-1"), 1u) << nlohmann::json(targets).dump();
  EXPECT_TRUE(scaler.Running()) << context;
  EXPECT_EQ(scaler.Stop(), 0) << context;
}

}  // namespace
}  // namespace manifold::test
