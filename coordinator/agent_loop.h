// AgentLoop: the coordinator's decisions about agents and jobs, one frame and one tick at a
// time.
//
// It receives agents' frames (hello, heartbeats, phases, output, results, draining,
// goodbye) and the API's requests (new jobs, cancels, drains), keeps the in-memory view of
// waiting and running jobs, runs scheduling passes, and applies what each recorded
// transition did (requeue, cancel, merge). Every rule about messages arriving twice, late
// or never lives here or in the pure functions it calls: fencing and retries
// (job_rules.h, through the store), liveness (AgentSessions::Lost), deadlines and queue
// timeouts (job_timeouts.h). It does no I/O of its own: the store, the agent link and the
// merge queue are handed in, and the time is passed to every call, so its unit tests run
// it against an in-memory store and a recording link in milliseconds. It is one concept,
// the loop's decisions, in one file of about 500 lines (and agent_loop_view.cc, which reads
// its view from the store): every part that stands alone (sessions, reports, budgets, time
// rules, assignments, merges) has a file of its own.
//
// Thread-safety: one thread (the coordinator's loop) makes every call, except Agents()
// and malformed_frames(), which any thread may call.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/messages.h"
#include "common/status.h"
#include "common/wire.h"
#include "coordinator/agent_link.h"
#include "coordinator/agent_sessions.h"
#include "coordinator/assignments.h"
#include "coordinator/cold_build_times.h"
#include "coordinator/job_reports.h"
#include "coordinator/job_timeouts.h"
#include "coordinator/job_view.h"
#include "coordinator/log_budget.h"
#include "coordinator/loop_store.h"
#include "coordinator/metrics.h"
#include "coordinator/reconcile.h"

namespace manifold {

struct LoopOptions {
  std::chrono::milliseconds heartbeat_interval{2000};
  int missed_heartbeats = 3;  // then the agent is lost and its jobs are retried
  // Retries of a job after faults outside its build (job_rules.h, FailureCause).
  uint32_t max_retries = 10;
  // A pending job whose platform no connected agent has served for this long fails.
  std::chrono::milliseconds queue_timeout{std::chrono::minutes(15)};
  // Under --emulation fallback, how long a job waits for a native agent before an
  // emulated one may take it.
  std::chrono::milliseconds emulation_fallback_wait{std::chrono::seconds(60)};
  // An agent's layer cache counts as warm for a repository and platform it built this
  // recently; the scheduler then prefers it for jobs of the same repository.
  std::chrono::milliseconds cache_affinity_window{std::chrono::hours(6)};
  // The registry cache: --cache-repo-template and --cache-ttl (coordinator/cache_plan.h).
  CacheDefaults cache;
  // Registry caches a newly connected agent is told to load before its first build
  // (--warm-start-caches; coordinator/cache_plan.h WarmStartCaches). 0: none.
  size_t warm_start_caches = 8;
  WireLimits limits;
  LogLimits log_limits;
  ContextSource contexts;
  // Whether this coordinator may assign jobs and push indexes now: with several
  // coordinators, only while its leader lease is renewed in time (coordinator/leadership.h).
  // The Coordinator hands it to its merges too. Unset: always.
  std::function<bool()> leading;
};

class AgentLoop {
 public:
  using RequestMerge = std::function<void(BuildRecord build)>;

  AgentLoop(LoopStore& store, AgentLink& link, Metrics& metrics, RequestMerge request_merge,
            LoopOptions options, LoopClock::time_point now);

  // Loads the work to resume from the store: waiting jobs, jobs agents hold (their agents
  // are awaited), and builds left merging (handed to the merge queue). Later, after a
  // write whose outcome was unknown (LoopStore::unknown_outcomes), the loop reads the
  // same back once the database answers, so its view never stays apart from the store's.
  Status Resume(LoopClock::time_point now);

  // A frame from connection `routing_id`, whose CURVE key is `peer_key` ("" in plaintext).
  void HandleFrame(const std::string& routing_id, const std::string& peer_key,
                   const std::string& frame, LoopClock::time_point now);
  // A message that was not one frame; counted like a frame that does not decode.
  void CountMalformed(const std::string& why);
  // Between frames: stores held reports, schedules, and every quarter heartbeat checks
  // liveness, deadlines, queue timeouts and the load gauges. (Deleting old history is not
  // the loop's: coordinator/retention.h does it on a thread of its own.)
  void Tick(LoopClock::time_point now);

  // The API's requests (BuildQueue), carried out on the loop thread.
  void Enqueue(std::vector<QueuedJob> jobs,
               std::shared_ptr<const std::map<std::string, std::string>> secrets,
               LoopClock::time_point now);
  void BuildCanceled(const std::vector<JobRecord>& jobs);
  // Work another coordinator's API took (coordinator/work_listener.h). ReadWorkBack reads
  // the whole view back from the store, which adds new jobs and cancels on agents what the
  // store no longer holds; TakeBuilds reads submitted builds' pending jobs, TakeCancel one
  // canceled build's jobs, to drop or stop on their agents.
  void ReadWorkBack(LoopClock::time_point now);
  void TakeBuilds(const std::vector<uint64_t>& build_ids, LoopClock::time_point now);
  void TakeCancel(uint64_t build_id);
  void Drain(const std::string& agent_id);
  // Refuses and disconnects the connected agents whose key `allowed` no longer accepts.
  void CutOffAgents(const std::function<bool(const std::string& key)>& allowed,
                    const std::string& key_list, LoopClock::time_point now);

  // Thread-safe.
  std::vector<AgentView> Agents(LoopClock::time_point now) const { return sessions_.Snapshot(now); }
  uint64_t malformed_frames() const { return malformed_frames_.load(); }
  // For tests: the loop's view.
  const WaitingJobs& waiting() const { return pending_; }
  const RunningJobs& running() const { return running_; }

 private:
  // Makes the loop's view of waiting, held and merging work the store's. At start the view
  // is empty and a job whose build's secrets are gone fails; later, what agrees with the
  // store keeps its times, and a job whose secrets have not come yet is left to the
  // Enqueue bringing them.
  Status ReadView(LoopClock::time_point now, bool at_start);
  // Reads the view back if a write's outcome was unknown since it was last read.
  void CatchUpWithStore(LoopClock::time_point now);
  void HandleHello(const std::string& routing_id, const std::string& peer_key,
                   const HelloMsg& hello, LoopClock::time_point now);
  void AcceptLog(const std::string& agent_id, const LogChunkMsg& chunk, LoopClock::time_point now);
  void SendToAgent(const std::string& agent_id, const CoordinatorMessage& message);
  void AddPending(QueuedJob job, LoopClock::time_point now);
  // Fails a job whose build has secrets the coordinator no longer holds (it restarted).
  void FailJobWithoutSecrets(const QueuedJob& job, LoopClock::time_point now);
  void ReleaseJob(uint64_t job_id);
  // Ends an agent's session, retrying or failing the jobs it was running.
  void EndSession(const std::string& agent_id, const std::string& error, const char* reason,
                  LoopClock::time_point now);
  // Cancels what the agent holds that is not its job, and retries what it lost.
  void ApplyReconciliation(const std::string& agent_id, const Reconciliation& reconciled,
                           const char* lost_because, const char* reason, LoopClock::time_point now);
  // Ends a running attempt after a fault outside its build (retried while retries are
  // left); kept in unrecorded_losses_ while the database is away.
  void RetryAttempt(const JobRef& job, const std::string& agent_id, const std::string& error,
                    const char* reason, LoopClock::time_point now);
  void RecordUnrecordedLosses(LoopClock::time_point now);
  // What recording a report did: a metric, or a cancel when it was not current.
  void ApplyPhase(const JobReports::Phase& phase, bool current);
  void ApplyResult(const std::string& agent_id, const JobResultMsg& result,
                   const ResultOutcome& outcome, LoopClock::time_point now);
  // Remembers (and records) that a job pushed its registry cache to `cache_ref`.
  void NoteCachePush(const RunningJob& ran, const std::string& cache_ref,
                     LoopClock::time_point now);
  // Carries out what a recorded transition did: requeue, cancels, merge; counts it.
  void ApplyOutcome(const ResultOutcome& outcome, const char* retry_reason,
                    LoopClock::time_point now);
  void ScheduleJobs(LoopClock::time_point now);
  void CheckLiveness(LoopClock::time_point now);
  void CheckDeadlines(LoopClock::time_point now);
  void CheckQueueTimeouts(LoopClock::time_point now);
  // Records the waiting jobs' reasons (waiting_reasons.h) that changed since last recorded.
  void RecordWaitingReasons(const QueueRules& rules);

  LoopStore& store_;
  AgentLink& link_;
  Metrics& metrics_;
  const RequestMerge request_merge_;
  const LoopOptions options_;
  const LoopClock::time_point started_;
  std::atomic<uint64_t> malformed_frames_{0};

  AgentSessions sessions_;
  WaitingJobs pending_;
  RunningJobs running_;
  // Build secrets by build id, from submit until the build can run no job again: never
  // written anywhere, so a restart loses them (FailJobWithoutSecrets).
  std::map<uint64_t, std::shared_ptr<const std::map<std::string, std::string>>> secrets_;
  // Retries of lost attempts the store could not take (the database was away), by job id.
  struct UnrecordedLoss {
    JobRef job;
    std::string agent_id;
    std::string error;
    const char* reason;
  };
  std::map<uint64_t, UnrecordedLoss> unrecorded_losses_;
  std::map<std::string, WarmCache> warm_caches_;  // by agent id; kept across reconnects
  ColdBuildTimes cold_times_;                     // the yardstick of cached jobs
  CachePushTimes cache_pushes_;                   // registry cache pushes, as recorded in the store
  CacheRefs cache_refs_;                          // and where each went
  PlatformSightings sightings_;
  LogBudget log_budget_;
  JobReports reports_;
  uint64_t unknown_outcomes_seen_;  // LoopStore::unknown_outcomes when the view was read
  LoopClock::time_point last_checked_;
  LoopClock::time_point refusals_end_;  // when the last AgentSession::refused_until passes
  bool schedule_needed_ = true;
};

}  // namespace manifold
