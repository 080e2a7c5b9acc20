// Metrics: the coordinator's Prometheus series (prometheus-cpp), served on /metrics.
//
// Names follow Prometheus conventions: a manifold_ prefix, base units (seconds), _total
// for counters. manifold_desired_agents{platform} is the series an autoscaler follows:
//   desired = ceil((pending + running jobs) / (slots per agent x target utilisation))
// where slots per agent is the mean over the connected native agents of that platform, the
// kind an autoscaler adds (over all its agents, emulated ones too, when no native one is
// connected; 1 when none is), and the target utilisation (default 1.0: every slot busy;
// lower it for headroom) comes from --target-utilisation. Pending counts every waiting
// job, those waiting for a native agent under --emulation fallback too.
// Thread-safe: prometheus-cpp metrics are atomic and their families lock when adding a
// series; calls come from the loop thread, the merge threads and the context collector.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "common/platform.h"
#include "common/registry.h"

namespace prometheus {
class Registry;
class Exposer;
template <typename T>
class Family;
class Gauge;
class Counter;
class Histogram;
}  // namespace prometheus

namespace manifold {

// One platform's slice of the loop's view, for the gauges.
struct PlatformLoad {
  int pending = 0;
  int running = 0;
  int agents_native = 0;
  int agents_emulated = 0;
  int agents_draining = 0;
  int slots_total = 0;
  int slots_busy = 0;
  // Native agents, draining ones included, and their slots: the divisor of DesiredAgents.
  int native_agents = 0;
  int native_slots = 0;
};

class Metrics {
 public:
  explicit Metrics(double target_utilisation = 1.0);
  ~Metrics();

  // Serves /metrics on "HOST:PORT" (port 0 picks a free one). Returns the bound port, or
  // -1 if the address cannot be bound.
  int Serve(const std::string& address);

  void SetLoad(const std::map<Platform, PlatformLoad>& load);
  // manifold_builds{state}: builds kept, by state. The unfinished states are set from a
  // count (coordinator/retention.h); the finished ones are set once at start, then
  // CountBuild adds each build that ends and ForgetFinishedBuilds takes off those deleted.
  void SetUnfinishedBuilds(const std::map<std::string, int>& counts);
  void SetFinishedBuilds(const std::map<std::string, int>& counts);
  void ForgetFinishedBuilds(const std::map<std::string, int>& counts);

  void ObserveQueueWait(const Platform& platform, double seconds);
  void ObserveDispatchLatency(const Platform& platform, double seconds);
  void ObserveJobDuration(const Platform& platform, const std::string& result, double seconds);
  void ObserveBuildDuration(double seconds);
  // A job succeeded in `seconds` (assignment to result) with its agent's cache `cache`
  // ("warm" or "cold", coordinator/job_view.h), and took `cold_ratio` times the median
  // of its repository's and platform's cold jobs before it (coordinator/cold_build_times.h)
  // when there were any.
  void ObserveCachedJob(const Platform& platform, const std::string& cache, double seconds,
                        std::optional<double> cold_ratio);
  void CountJob(const Platform& platform, const std::string& result);
  // A build ended as `result` (succeeded, failed, canceled).
  void CountBuild(const std::string& result);
  void CountRetry(const std::string& reason);
  void CountAgentLost(const Platform& platform);
  void CountMalformedFrame();
  // A well-formed agent message that was not acted on; reason "not_assigned", "log_limit"
  // or "log_backlog".
  void CountDroppedMessage(const std::string& reason);
  // Build output: bytes "cut" from the middle of a job's stored log (--job-log-max-bytes)
  // or "dropped" past the backlog's cap (--pending-log-max-bytes); the backlog's bytes;
  // agents told to hold their output.
  void CountLogBytes(const std::string& outcome, uint64_t bytes);
  void SetLogBacklog(uint64_t bytes);
  void CountLogHold();
  // One HTTP request of an index merge to a registry (RegistryOptions::on_request).
  void CountRegistryRequest(RegistryOperation operation, long status);

  // The build contexts stored, and those the context collector deleted, per reason: age,
  // size or corrupt (found damaged on read).
  void SetContextsStored(uint64_t contexts, uint64_t bytes);
  void CountContextsDeleted(const std::string& reason, int count);

  // manifold_leader (1 or 0) and manifold_leader_epoch: whether this coordinator holds the
  // leader lease now (coordinator/leadership.h), and the epoch it last held.
  void SetLeader(bool leading, int64_t epoch);

  // The autoscaling formula above, exposed for tests.
  static int DesiredAgents(const PlatformLoad& load, double target_utilisation);

 private:
  struct Families;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Families> families_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  const double target_utilisation_;
  std::set<Platform> platforms_seen_;  // gauges of platforms that went idle are set to 0
};

}  // namespace manifold
