// ScalingBurst: a burst of builds against a farm, watched from outside as an operator would
// through the coordinator's API: how many agents of the scaled platform are online over
// time, when each job left the queue, and how every build and job ended. It is what
// AutoscalingTest checks and what bench/autoscale_bench measures, with the local scaler
// (ops/autoscaling/local-scaler.sh) running or not; starting and stopping the scaler is
// the caller's. Not thread-safe; one burst at a time per farm.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "tests/support/farm.h"
#include "tests/support/subprocess.h"

namespace manifold::test {

// The scaler's query (ops/autoscaling/scaling.env), which KEDA's ScaledObject sends too.
inline constexpr char kArm64DesiredQuery[] =
    "max(manifold_desired_agents{platform=\"linux/arm64\"})";

// A farm for bursts: agents amd64-1 and arm64-1, synthetic, each build taking `build_ms`;
// Prometheus, once started (farm.Start("prometheus")), on `prometheus_port` scraping and
// evaluating every second.
FarmOptions BurstFarmOptions(int prometheus_port, int build_ms);

// Starts ops/autoscaling/local-scaler.sh on `farm` with the recipes' steps, a 1 s poll, a
// 5 s scale-in delay, a 2 s scale-in period and at most `max_agents`; its output goes to
// local-scaler.log in farm.dir().
Status StartLocalScaler(Subprocess& scaler, const Farm& farm, int prometheus_port, int max_agents);

struct BurstOptions {
  std::string platform = "linux/arm64";  // the scaled platform
  int scaled_builds = 6;                 // builds for `platform` only
  std::string other_platform = "linux/amd64";
  int other_builds = 2;  // builds for other_platform only
  // After the builds ended, wait until exactly this many agents of `platform` are listed
  // (online or draining), as when a scaler drained back to its minimum; 0: do not wait.
  int settle_agents = 0;
  std::chrono::milliseconds timeout{std::chrono::seconds(90)};  // the whole burst
  std::string tag = "burst";  // images are pushed as REGISTRY/TAG:N
};

struct BurstResult {
  // Not ok when a build could not be submitted, the builds did not end, or the agents did
  // not settle within the timeout; the figures then hold what was seen.
  Status status = Status::Ok();
  int builds_succeeded = 0;
  int builds_failed = 0;  // failed or canceled
  // Jobs that needed more than one attempt or were requeued: "build 3 linux/arm64:
  // attempt 2, retries 1" (goal: none).
  std::vector<std::string> retried_jobs;
  // Seconds from its submission to the first time the job was seen out of `pending`, per
  // job of every build.
  std::vector<double> queue_waits_s;
  std::vector<double> scaled_queue_waits_s;  // the same for `platform`'s jobs only
  int agents_at_start = 0;                   // of `platform`, online before the burst
  int peak_agents = 0;                       // most seen online at once
  double first_new_s = -1;    // from the first submission to the first agent beyond the start
  double peak_s = -1;         // ... to peak_agents first seen
  double builds_done_s = -1;  // ... to every build ended
  double settled_s = -1;      // ... to settle_agents reached
  // "12.3s 4 online, 1 draining" at every change, for failure messages.
  std::vector<std::string> timeline;
};

BurstResult RunBurst(const Farm& farm, const BurstOptions& options);

// The value of a PromQL `query` that yields one series, through the HTTP API of the
// Prometheus on 127.0.0.1:`port` (/api/v1/query, as KEDA and the scaler read it); nullopt
// when it does not answer or has no series yet.
std::optional<double> PrometheusValue(int port, const std::string& query);

}  // namespace manifold::test
