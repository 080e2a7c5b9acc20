// JobReports: what agents reported about their jobs (phases, results, build output) on
// its way into the store.
//
// Reports that arrive in one turn of the loop are recorded together: a zero-time build's
// accepted, building, pushing and result cost one transaction. Output is stored before
// the result that ends its job, and results in the order they came. While the database is
// away, results wait here unacknowledged (the agents keep them and send them again) and
// writes are tried again at most every half second; phases, which a later report
// supersedes, are not kept. Every queue is bounded. Not thread-safe (the loop owns it).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/messages.h"
#include "coordinator/build.h"
#include "coordinator/job_view.h"
#include "coordinator/loop_store.h"
#include "coordinator/metrics.h"

namespace manifold {

class JobReports {
 public:
  struct Phase {
    std::string agent_id;
    JobUpdateMsg update;
    LoopClock::time_point at;  // when it arrived
  };
  // What the loop does once a report is recorded.
  struct Handlers {
    std::function<void(const Phase& phase, bool current)> phase_recorded;
    std::function<void(const std::string& agent_id, const JobResultMsg& result,
                       const ResultOutcome& outcome, LoopClock::time_point now)>
        result_recorded;
  };

  JobReports(LoopStore& store, Metrics& metrics, uint32_t max_retries, Handlers handlers)
      : store_(store),
        metrics_(metrics),
        max_retries_(max_retries),
        handlers_(std::move(handlers)) {}

  void AddPhase(const std::string& agent_id, const JobUpdateMsg& update, LoopClock::time_point at);
  void AddResult(const std::string& agent_id, const JobResultMsg& result,
                 LoopClock::time_point now);
  // Whether output waiting for the database fills its queue: new chunks are dropped then.
  bool logs_full() const { return logs_.size() >= kMaxQueued; }
  size_t logs_queued() const { return logs_.size(); }
  // Queues a chunk of output and stores what is queued.
  void AddLog(const std::string& agent_id, LogChunkMsg chunk, LoopClock::time_point now);

  // Stores what is queued, unless the database was away less than a retry interval ago.
  void Flush(LoopClock::time_point now);
  bool store_away(LoopClock::time_point now) const { return now < retry_at_; }

 private:
  static constexpr size_t kMaxQueued = 100000;  // per queue
  struct Log {
    LogChunkMsg chunk;
    std::string agent_id;
  };
  void StoreLogs(LoopClock::time_point now);
  void StoreResults(LoopClock::time_point now);
  // Records one result alone; false if the database is away.
  bool StoreResult(const std::string& agent_id, const JobResultMsg& result,
                   LoopClock::time_point now);

  LoopStore& store_;
  Metrics& metrics_;
  const uint32_t max_retries_;
  const Handlers handlers_;
  std::deque<Log> logs_;       // chunks the store could not take yet
  std::vector<Phase> phases_;  // this turn's phases, recorded with its results
  // Results held while the store is away, recorded (and acknowledged) once it is back.
  std::deque<std::pair<std::string, JobResultMsg>> results_;
  LoopClock::time_point retry_at_;
};

}  // namespace manifold
