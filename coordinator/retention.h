// Retention: how long the coordinator keeps history, and the thread that deletes what is
// older. Finished builds go with their jobs, job events and logs once they ended longer
// ago than the retention (--retention, 30 days; 0 keeps them forever), oldest first, a
// batch of builds per transaction so no lock is held long; agents that left as long ago
// go too, unless connected or named by a job still kept.
//
// It runs on a thread of its own with a store of its own (one database connection), never
// on the agent loop's: a slow delete delays no frame, heartbeat or scheduling pass. The
// same thread keeps the manifold_builds gauge: the unfinished states from a count over the
// unfinished builds only (their partial index), the finished ones counted once at Start
// and then moved by Metrics::CountBuild as builds end and by each batch deleted.
// Thread-safety: Start and Stop from one thread; the rest runs on the retention's thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"
#include "coordinator/metrics.h"
#include "coordinator/retention_store.h"

namespace manifold {

// "30d", "12h", "90m", "60s", or a bare number of seconds (as --log-retention took); 0 is
// forever. Errors name `flag`.
Result<std::chrono::seconds> ParseRetention(std::string_view flag, std::string_view text);
// The retention as a person reads it: "30 days", "12 hours", "90 seconds".
std::string FormatRetention(std::chrono::seconds keep);

struct RetentionOptions {
  std::chrono::seconds keep{std::chrono::hours(24 * 30)};  // 0: keep forever
  int batch_builds = 500;                                  // builds per transaction
  std::chrono::seconds count_every{5};                     // the unfinished builds' gauge
  // The ids of the agents connected now (AgentLoop::Agents is thread-safe).
  std::function<std::vector<std::string>()> connected_agents;
};

class Retention {
 public:
  Retention(RetentionStore& store, Metrics& metrics, RetentionOptions options);
  ~Retention();  // Stop()

  // Counts the finished builds for the gauge (before anything can end a build, so that
  // CountBuild's moves add to it) and starts the thread.
  Status Start();
  // Wakes the thread and joins it; a batch under way finishes first.
  void Stop();

 private:
  void Run();
  // One deletion pass: batches until one comes back short, or Stop.
  void Prune();
  void CountUnfinished();

  RetentionStore& store_;
  Metrics& metrics_;
  const RetentionOptions options_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mutex_
};

}  // namespace manifold
