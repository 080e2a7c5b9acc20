#include "coordinator/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cmath>

namespace manifold {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

namespace {

// Seconds, from a fast dispatch to an hour-long build.
const Histogram::BucketBoundaries kDurationBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                      1,     2.5,  5,     10,   30,  60,   120,
                                                      300,   600,  1200,  1800, 3600};

// A job's time over its cold median: from a cache that served everything to slower than
// cold.
const Histogram::BucketBoundaries kRatioBuckets = {0.05, 0.1, 0.15, 0.2, 0.3, 0.5,
                                                   0.7,  0.9, 1.1,  1.5, 2,   3};

}  // namespace

struct Metrics::Families {
  explicit Families(prometheus::Registry& r)
      : pending(BuildGauge()
                    .Name("manifold_jobs_pending")
                    .Help("Jobs waiting for an agent, per platform")
                    .Register(r)),
        running(BuildGauge()
                    .Name("manifold_jobs_running")
                    .Help("Jobs assigned to an agent and not finished, per platform")
                    .Register(r)),
        builds(BuildGauge().Name("manifold_builds").Help("Builds by state").Register(r)),
        agents(BuildGauge()
                   .Name("manifold_agents")
                   .Help("Connected agents per platform, mode (native|emulated) and state "
                         "(online|draining)")
                   .Register(r)),
        slots(BuildGauge()
                  .Name("manifold_agent_slots")
                  .Help("Build slots of connected agents per platform and state (idle|busy)")
                  .Register(r)),
        desired(BuildGauge()
                    .Name("manifold_desired_agents")
                    .Help("Agents of this platform that would clear the current work at the "
                          "target utilisation; follow it to autoscale")
                    .Register(r)),
        queue_wait(BuildHistogram()
                       .Name("manifold_queue_wait_seconds")
                       .Help("Time from a job entering the queue to its assignment")
                       .Register(r)),
        dispatch(BuildHistogram()
                     .Name("manifold_dispatch_latency_seconds")
                     .Help("Time from assignment to the agent accepting the job")
                     .Register(r)),
        job_duration(BuildHistogram()
                         .Name("manifold_job_duration_seconds")
                         .Help("Time from assignment to the job's result, per platform and result")
                         .Register(r)),
        cached_job_duration(BuildHistogram()
                                .Name("manifold_job_cache_duration_seconds")
                                .Help("Time from assignment to the result of succeeded jobs, per "
                                      "platform and the cache their agent had for the job's "
                                      "repository (warm|cold)")
                                .Register(r)),
        cold_ratio(BuildHistogram()
                       .Name("manifold_job_cold_ratio")
                       .Help("A succeeded job's time over the median time of the cold jobs of "
                             "its repository and platform before it, per platform and cache "
                             "(warm|cold); 0.2 is five times faster than cold")
                       .Register(r)),
        build_duration(BuildHistogram()
                           .Name("manifold_build_duration_seconds")
                           .Help("Time from submit to the index pushed, for succeeded builds")
                           .Register(r)),
        jobs_total(BuildCounter()
                       .Name("manifold_jobs_total")
                       .Help("Job attempts ended, per platform and result")
                       .Register(r)),
        builds_total(BuildCounter()
                         .Name("manifold_builds_total")
                         .Help("Builds ended, per result")
                         .Register(r)),
        retries_total(BuildCounter()
                          .Name("manifold_job_retries_total")
                          .Help("Job attempts retried, per reason")
                          .Register(r)),
        agents_lost_total(BuildCounter()
                              .Name("manifold_agents_lost_total")
                              .Help("Agents declared lost after missed heartbeats, per platform")
                              .Register(r)),
        malformed_total(BuildCounter()
                            .Name("manifold_agent_frames_malformed_total")
                            .Help("Frames from agents dropped because they did not decode")
                            .Register(r)),
        dropped_total(BuildCounter()
                          .Name("manifold_agent_messages_dropped_total")
                          .Help("Well-formed agent messages dropped, per reason: not_assigned "
                                "(for a job attempt not assigned to that agent), log_limit "
                                "(build output over the per-job rate or chunk size), "
                                "log_backlog (build output past --pending-log-max-bytes)")
                          .Register(r)),
        log_bytes_total(BuildCounter()
                            .Name("manifold_log_bytes_total")
                            .Help("Build output bytes not kept, per outcome: cut (from the "
                                  "middle of a job's log, --job-log-max-bytes) or dropped "
                                  "(past --pending-log-max-bytes)")
                            .Register(r)),
        log_backlog_bytes(BuildGauge()
                              .Name("manifold_log_backlog_bytes")
                              .Help("Build output waiting for the database, in bytes")
                              .Register(r)),
        log_holds_total(BuildCounter()
                            .Name("manifold_log_holds_total")
                            .Help("Times an agent was told to hold its build output because "
                                  "the output waiting for the database passed half of "
                                  "--pending-log-max-bytes")
                            .Register(r)),
        registry_requests_total(BuildCounter()
                                    .Name("manifold_registry_requests_total")
                                    .Help("HTTP requests the coordinator sent to registries "
                                          "(merging image indexes), per operation and status "
                                          "(the HTTP status, or error when none came)")
                                    .Register(r)),
        contexts(BuildGauge()
                     .Name("manifold_contexts_stored")
                     .Help("Build contexts the coordinator keeps")
                     .Register(r)),
        context_bytes(BuildGauge()
                          .Name("manifold_context_bytes")
                          .Help("Bytes of the build contexts the coordinator keeps")
                          .Register(r)),
        contexts_deleted_total(BuildCounter()
                                   .Name("manifold_contexts_deleted_total")
                                   .Help("Build contexts deleted, per reason: age (unused for "
                                         "--context-max-age), size (over --context-max-bytes) "
                                         "or corrupt (found damaged on read)")
                                   .Register(r)),
        leader(BuildGauge()
                   .Name("manifold_leader")
                   .Help("1 on the coordinator that holds the leader lease and runs the agent "
                         "loop, 0 on a standby and while a leader's lease is not renewed")
                   .Register(r)),
        leader_epoch(BuildGauge()
                         .Name("manifold_leader_epoch")
                         .Help("The leader lease's epoch this coordinator last held (0: never); "
                               "it grows with every takeover")
                         .Register(r)) {}

  prometheus::Family<prometheus::Gauge>& pending;
  prometheus::Family<prometheus::Gauge>& running;
  prometheus::Family<prometheus::Gauge>& builds;
  prometheus::Family<prometheus::Gauge>& agents;
  prometheus::Family<prometheus::Gauge>& slots;
  prometheus::Family<prometheus::Gauge>& desired;
  prometheus::Family<Histogram>& queue_wait;
  prometheus::Family<Histogram>& dispatch;
  prometheus::Family<Histogram>& job_duration;
  prometheus::Family<Histogram>& cached_job_duration;
  prometheus::Family<Histogram>& cold_ratio;
  prometheus::Family<Histogram>& build_duration;
  prometheus::Family<prometheus::Counter>& jobs_total;
  prometheus::Family<prometheus::Counter>& builds_total;
  prometheus::Family<prometheus::Counter>& retries_total;
  prometheus::Family<prometheus::Counter>& agents_lost_total;
  prometheus::Family<prometheus::Counter>& malformed_total;
  prometheus::Family<prometheus::Counter>& dropped_total;
  prometheus::Family<prometheus::Counter>& log_bytes_total;
  prometheus::Family<prometheus::Gauge>& log_backlog_bytes;
  prometheus::Family<prometheus::Counter>& log_holds_total;
  prometheus::Family<prometheus::Counter>& registry_requests_total;
  prometheus::Family<prometheus::Gauge>& contexts;
  prometheus::Family<prometheus::Gauge>& context_bytes;
  prometheus::Family<prometheus::Counter>& contexts_deleted_total;
  prometheus::Family<prometheus::Gauge>& leader;
  prometheus::Family<prometheus::Gauge>& leader_epoch;
};

Metrics::Metrics(double target_utilisation)
    : registry_(std::make_shared<prometheus::Registry>()),
      families_(std::make_unique<Families>(*registry_)),
      target_utilisation_(target_utilisation) {
  families_->malformed_total.Add({});
  for (const char* reason : {"not_assigned", "log_limit", "log_backlog"}) {
    families_->dropped_total.Add({{"reason", reason}});
  }
  for (const char* outcome : {"cut", "dropped"}) {
    families_->log_bytes_total.Add({{"outcome", outcome}});
  }
  families_->log_backlog_bytes.Add({});
  families_->log_holds_total.Add({});
  families_->build_duration.Add({}, kDurationBuckets);
  // Series exist from the start at 0, so rates and alerts see them before the first event.
  for (const char* result : {"succeeded", "failed", "canceled"}) {
    families_->builds_total.Add({{"result", result}});
  }
  for (const char* reason : {"age", "size", "corrupt"}) {
    families_->contexts_deleted_total.Add({{"reason", reason}});
  }
  families_->contexts.Add({});
  families_->context_bytes.Add({});
  families_->leader.Add({});
  families_->leader_epoch.Add({});
  for (const char* reason : {"agent_lost", "agent_left", "agent_restarted", "agent_revoked",
                             "assignment_lost", "job_failed_retryable", "refused"}) {
    families_->retries_total.Add({{"reason", reason}});
  }
}

Metrics::~Metrics() = default;

int Metrics::Serve(const std::string& address) {
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(address);
  } catch (const std::exception&) {
    return -1;
  }
  exposer_->RegisterCollectable(registry_);
  std::vector<int> ports = exposer_->GetListeningPorts();
  return ports.empty() ? -1 : ports.front();
}

int Metrics::DesiredAgents(const PlatformLoad& load, double target_utilisation) {
  // An emulated agent's slots (an amd64 host with many) say nothing of the native agents
  // the autoscaler adds, and its free slots do not serve a job waiting for a native one.
  int agents = load.agents_native + load.agents_emulated + load.agents_draining;
  double slots_per_agent = load.native_agents > 0
                               ? static_cast<double>(load.native_slots) / load.native_agents
                           : agents > 0 ? static_cast<double>(load.slots_total) / agents
                                        : 1.0;
  if (slots_per_agent <= 0) slots_per_agent = 1.0;
  double work = load.pending + load.running;
  return static_cast<int>(std::ceil(work / (slots_per_agent * target_utilisation) - 1e-9));
}

void Metrics::SetLoad(const std::map<Platform, PlatformLoad>& load) {
  for (const auto& [platform, _] : load) {
    if (platforms_seen_.insert(platform).second) {
      std::string p = platform.ToString();
      families_->agents_lost_total.Add({{"platform", p}});
      for (const char* result : {"succeeded", "failed", "retried", "timed_out", "no_agent"}) {
        families_->jobs_total.Add({{"platform", p}, {"result", result}});
      }
    }
  }
  for (const Platform& platform : platforms_seen_) {
    auto it = load.find(platform);
    PlatformLoad l = it == load.end() ? PlatformLoad{} : it->second;
    std::string p = platform.ToString();
    families_->pending.Add({{"platform", p}}).Set(l.pending);
    families_->running.Add({{"platform", p}}).Set(l.running);
    families_->agents.Add({{"platform", p}, {"mode", "native"}, {"state", "online"}})
        .Set(l.agents_native);
    families_->agents.Add({{"platform", p}, {"mode", "emulated"}, {"state", "online"}})
        .Set(l.agents_emulated);
    families_->agents.Add({{"platform", p}, {"mode", "any"}, {"state", "draining"}})
        .Set(l.agents_draining);
    families_->slots.Add({{"platform", p}, {"state", "busy"}}).Set(l.slots_busy);
    families_->slots.Add({{"platform", p}, {"state", "idle"}}).Set(l.slots_total - l.slots_busy);
    families_->desired.Add({{"platform", p}}).Set(DesiredAgents(l, target_utilisation_));
  }
}

void Metrics::SetUnfinishedBuilds(const std::map<std::string, int>& counts) {
  for (const char* state : {"queued", "running", "merging"}) {
    auto it = counts.find(state);
    families_->builds.Add({{"state", state}}).Set(it == counts.end() ? 0 : it->second);
  }
}

void Metrics::SetFinishedBuilds(const std::map<std::string, int>& counts) {
  for (const char* state : {"succeeded", "failed", "canceled"}) {
    auto it = counts.find(state);
    families_->builds.Add({{"state", state}}).Set(it == counts.end() ? 0 : it->second);
  }
}

void Metrics::ForgetFinishedBuilds(const std::map<std::string, int>& counts) {
  for (const auto& [state, count] : counts) {
    families_->builds.Add({{"state", state}}).Decrement(count);
  }
}

void Metrics::ObserveQueueWait(const Platform& platform, double seconds) {
  families_->queue_wait.Add({{"platform", platform.ToString()}}, kDurationBuckets).Observe(seconds);
}

void Metrics::ObserveDispatchLatency(const Platform& platform, double seconds) {
  families_->dispatch.Add({{"platform", platform.ToString()}}, kDurationBuckets).Observe(seconds);
}

void Metrics::ObserveJobDuration(const Platform& platform, const std::string& result,
                                 double seconds) {
  families_->job_duration
      .Add({{"platform", platform.ToString()}, {"result", result}}, kDurationBuckets)
      .Observe(seconds);
}

void Metrics::ObserveCachedJob(const Platform& platform, const std::string& cache, double seconds,
                               std::optional<double> cold_ratio) {
  const prometheus::Labels labels = {{"platform", platform.ToString()}, {"cache", cache}};
  families_->cached_job_duration.Add(labels, kDurationBuckets).Observe(seconds);
  // The ratio's series appears with the duration's, empty until there is a cold median.
  Histogram& ratio = families_->cold_ratio.Add(labels, kRatioBuckets);
  if (cold_ratio) ratio.Observe(*cold_ratio);
}

void Metrics::ObserveBuildDuration(double seconds) {
  families_->build_duration.Add({}, kDurationBuckets).Observe(seconds);
}

void Metrics::CountJob(const Platform& platform, const std::string& result) {
  families_->jobs_total.Add({{"platform", platform.ToString()}, {"result", result}}).Increment();
}

void Metrics::CountBuild(const std::string& result) {
  families_->builds_total.Add({{"result", result}}).Increment();
  families_->builds.Add({{"state", result}}).Increment();
}

void Metrics::CountRetry(const std::string& reason) {
  families_->retries_total.Add({{"reason", reason}}).Increment();
}

void Metrics::CountAgentLost(const Platform& platform) {
  families_->agents_lost_total.Add({{"platform", platform.ToString()}}).Increment();
}

void Metrics::CountMalformedFrame() { families_->malformed_total.Add({}).Increment(); }

void Metrics::CountDroppedMessage(const std::string& reason) {
  families_->dropped_total.Add({{"reason", reason}}).Increment();
}

void Metrics::CountLogBytes(const std::string& outcome, uint64_t bytes) {
  families_->log_bytes_total.Add({{"outcome", outcome}}).Increment(static_cast<double>(bytes));
}

void Metrics::SetLogBacklog(uint64_t bytes) {
  families_->log_backlog_bytes.Add({}).Set(static_cast<double>(bytes));
}

void Metrics::SetLeader(bool leading, int64_t epoch) {
  families_->leader.Add({}).Set(leading ? 1 : 0);
  families_->leader_epoch.Add({}).Set(static_cast<double>(epoch));
}

void Metrics::CountLogHold() { families_->log_holds_total.Add({}).Increment(); }

void Metrics::CountRegistryRequest(RegistryOperation operation, long status) {
  families_->registry_requests_total
      .Add({{"operation", std::string(RegistryOperationName(operation))},
            {"status", RegistryStatusName(status)}})
      .Increment();
}

void Metrics::SetContextsStored(uint64_t contexts, uint64_t bytes) {
  families_->contexts.Add({}).Set(static_cast<double>(contexts));
  families_->context_bytes.Add({}).Set(static_cast<double>(bytes));
}

void Metrics::CountContextsDeleted(const std::string& reason, int count) {
  families_->contexts_deleted_total.Add({{"reason", reason}}).Increment(count);
}

}  // namespace manifold
