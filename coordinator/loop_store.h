// LoopStore: what the coordinator's loop and its merge queue need from durable state.
//
// The loop never sees SQL: it asks for the work to resume at start, records scheduling
// passes, reports and results, ends jobs, and records merges through this interface. The
// PostgreSQL Store implements it for the farm; tests use an in-memory implementation that
// applies the same rules (coordinator/job_rules.h), so the loop's logic is tested in
// milliseconds and one rule-level suite checks both. Implementations are thread-safe (the
// loop thread and the merge threads call them at once); every error comes back as a
// Status, Unavailable when retrying later may help.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/messages.h"
#include "common/status.h"
#include "coordinator/build.h"
#include "coordinator/log_cap.h"

namespace manifold {

// The last successful registry cache push for an image repository and platform.
struct CachePush {
  std::string repository;  // the image's "registry/repository"
  Platform platform;
  std::string cache_ref;  // where the cache went: the platform's own cache reference
  int64_t pushed_unix_ms = 0;
  bool operator==(const CachePush&) const = default;
};

class LoopStore {
 public:
  virtual ~LoopStore() = default;

  // One build with its jobs (NotFound if there is none), for work another coordinator's
  // API took (coordinator/work_listener.h).
  virtual Result<BuildRecord> GetBuild(uint64_t id) = 0;
  // Jobs waiting for an agent, oldest first, for the loop's view at start-up.
  virtual Result<std::vector<QueuedJob>> PendingJobs() = 0;
  // The same, of these builds only: builds another coordinator's API took.
  virtual Result<std::vector<QueuedJob>> PendingJobsOf(const std::vector<uint64_t>& build_ids) = 0;
  // Jobs an agent holds (assigned, building, pushing), for the view at start-up.
  virtual Result<std::vector<JobRecord>> ActiveJobs() = 0;
  // Builds left in state merging (the coordinator stopped while merging), with their jobs.
  virtual Result<std::vector<BuildRecord>> BuildsToMerge() = 0;

  // One scheduling pass in one transaction: pending -> assigned with attempt + 1. Each
  // entry's new attempt, or 0 for a job that was no longer pending.
  virtual Result<std::vector<uint32_t>> AssignJobs(
      const std::vector<JobAssignment>& assignments) = 0;
  // Records why pending jobs wait (job id -> reason, coordinator/waiting_reasons.h) as
  // their placement, in one transaction; a job no longer pending keeps its own. A job put
  // back in the queue (below) starts with none.
  virtual Status SetWaitingReasons(const std::map<uint64_t, std::string>& reasons) = 0;
  // Records a job's result, fenced on (job, attempt, agent). A failure does what
  // JudgeFailure (job_rules.h) says: back to pending (using one of max_retries for a
  // fault outside the build), or the job and its build fail, canceling the rest.
  virtual Result<ResultOutcome> RecordJobResult(const std::string& agent_id,
                                                const JobResultMsg& result,
                                                uint32_t max_retries) = 0;
  // Phases (agent id, update) that arrived together, each fenced as a result is, then
  // results as RecordJobResult records them, all in one transaction, in that order.
  // *phases_current gets, for each phase, whether it was current.
  virtual Result<std::vector<ResultOutcome>> RecordJobReports(
      const std::vector<std::pair<std::string, JobUpdateMsg>>& phases,
      const std::vector<std::pair<std::string, JobResultMsg>>& results, uint32_t max_retries,
      std::vector<bool>* phases_current) = 0;
  // Ends a job that can no longer succeed, as `state` ("failed" or "timed_out"), failing
  // its build with `build_error` and canceling the build's other jobs. With an attempt,
  // only while the job is still at that attempt; a job already ended is left alone.
  virtual Result<ResultOutcome> EndJob(uint64_t job_id, std::optional<uint32_t> attempt,
                                       const std::string& state, const std::string& job_error,
                                       const std::string& build_error) = 0;
  // Appends build output, keeping each job's within `cap` (log_cap.h); a chunk seen before
  // is ignored. Not current if fenced.
  virtual Result<LogAppend> AppendLog(const JobRef& job, const std::string& agent_id,
                                      uint64_t chunk_seq, const std::string& data,
                                      const LogCap& cap) = 0;

  // merging -> succeeded with the pushed index; returns seconds from submit to now.
  virtual Result<double> CompleteBuild(uint64_t build_id, const std::string& index_digest,
                                       const std::string& index_media_type) = 0;
  // merging/queued/running -> failed.
  virtual Status FailBuild(uint64_t build_id, const std::string& error) = 0;

  virtual Status UpsertAgent(const HelloMsg& hello) = 0;
  virtual Status SetAgentState(const std::string& agent_id, const std::string& state) = 0;

  // Registry cache pushes (one kept per repository and platform, the latest), for placement.
  virtual Status RecordCachePush(const std::string& repository, const Platform& platform,
                                 const std::string& cache_ref) = 0;
  virtual Result<std::vector<CachePush>> CachePushes() = 0;

  // Writes so far whose outcome is unknown: the answer to the commit was lost and the
  // database could not be asked what became of it, so each may or may not have been
  // applied (it answered Unavailable). Whoever keeps a view beside the store reads it
  // again once this count moves and the database answers.
  virtual uint64_t unknown_outcomes() const = 0;
};

}  // namespace manifold
