// JobReports: what agents reported about their jobs (phases, results, build output) on
// its way into the store.
//
// Reports that arrive in one turn of the loop are recorded together: a zero-time build's
// accepted, building, pushing and result cost one transaction. Output is stored before
// the result that ends its job, and results in the order they came. While the database is
// away, results wait here unacknowledged (the agents keep them and send them again) and
// writes are tried again at most every half second; phases, which a later report
// supersedes, are not kept. Every queue is bounded; output by its bytes, with
// back-pressure on the agents that send it (log_flow.h). Each job's stored output is kept
// within its cap (log_cap.h). Not thread-safe (the loop owns it).
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
#include "coordinator/log_budget.h"
#include "coordinator/log_flow.h"
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
    // Tells an agent to hold its output (LogFlowMsg) or to send it again.
    std::function<void(const std::string& agent_id, bool hold)> log_flow;
  };

  JobReports(LoopStore& store, Metrics& metrics, uint32_t max_retries, const LogLimits& limits,
             Handlers handlers)
      : store_(store),
        metrics_(metrics),
        max_retries_(max_retries),
        log_cap_{limits.job_max_bytes},
        flow_(limits.pending_max_bytes),
        handlers_(std::move(handlers)) {}

  void AddPhase(const std::string& agent_id, const JobUpdateMsg& update, LoopClock::time_point at);
  void AddResult(const std::string& agent_id, const JobResultMsg& result,
                 LoopClock::time_point now);
  // Queues a chunk of output and stores what is queued. Past the backlog's cap the chunk
  // is dropped (the job's next chunk says so); its agent is told to hold its output.
  void AddLog(const std::string& agent_id, LogChunkMsg chunk, LoopClock::time_point now);
  uint64_t logs_queued_bytes() const { return logs_bytes_; }
  // A new session of the agent starts with its output not held.
  void AgentSessionStarted(const std::string& agent_id) { flow_.ForgetAgent(agent_id); }
  // The attempt ends: no later chunk of it needs the backlog's notice.
  void AttemptEnded(const JobRef& job) { flow_.ForgetJob(job); }

  // Stores what is queued, unless the database was away less than a retry interval ago.
  void Flush(LoopClock::time_point now);
  bool store_away(LoopClock::time_point now) const { return now < retry_at_; }

 private:
  static constexpr size_t kMaxQueued = 100000;  // per queue
  struct Log {
    LogChunkMsg chunk;
    std::string agent_id;
  };
  static uint64_t QueuedBytes(const std::string& agent_id, const LogChunkMsg& chunk);
  void StoreLogs(LoopClock::time_point now);
  // Tells held agents to resume once the backlog is low.
  void ResumeHeldAgents();
  void StoreResults(LoopClock::time_point now);
  // Records one result alone; false if the database is away.
  bool StoreResult(const std::string& agent_id, const JobResultMsg& result,
                   LoopClock::time_point now);

  LoopStore& store_;
  Metrics& metrics_;
  const uint32_t max_retries_;
  const LogCap log_cap_;
  LogFlow flow_;
  const Handlers handlers_;
  std::deque<Log> logs_;       // chunks the store could not take yet
  uint64_t logs_bytes_ = 0;    // their QueuedBytes
  std::vector<Phase> phases_;  // this turn's phases, recorded with its results
  // Results held while the store is away, recorded (and acknowledged) once it is back.
  std::deque<std::pair<std::string, JobResultMsg>> results_;
  LoopClock::time_point retry_at_;
};

}  // namespace manifold
