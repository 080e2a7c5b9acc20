// MemoryStore: the coordinator's LoopStore in memory, for tests of the loop.
//
// It keeps builds, jobs (with their events), log chunks and agents in maps and decides
// every job transition with the rules of coordinator/job_rules.h, so it answers as the
// PostgreSQL Store does; tests/integration/job_rules_store_test.cc runs one suite against
// both. Beyond LoopStore, tests create builds, read them back, and simulate the database
// being down (SetAvailable(false), FailCompleteBuild, LoseNextAnswer). Thread-safe: one
// mutex guards all of it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "coordinator/loop_store.h"

namespace manifold::test {

class MemoryStore final : public LoopStore {
 public:
  // A queued build with one pending job per platform, as Store::CreateBuild (without an
  // idempotency key) returns it.
  Result<BuildRecord> CreateBuild(const BuildSpec& spec);
  // The build with its jobs and their events; NotFound if there is none.
  Result<BuildRecord> GetBuild(uint64_t id) override;
  // The build's log chunks after sequence number `after`, at most `limit`, as Store::ListLogs.
  Result<std::vector<LogChunkRecord>> ListLogs(uint64_t build_id, int64_t after, int limit);
  // The agent's state ("online" once it said hello), nullopt if it never did.
  std::optional<std::string> AgentState(const std::string& agent_id);
  // While false, every call returns Unavailable and changes nothing, as when the database
  // is down; true again brings the same state back.
  void SetAvailable(bool available);
  // The next `times` CompleteBuild calls return Unavailable and change nothing, as when the
  // database goes away just after an index was pushed.
  void FailCompleteBuild(int times);
  // The next job transition (assign jobs, record reports, end job) is applied, but its
  // answer is lost: it returns Unavailable, counts as an unknown outcome, and the store is
  // unavailable from then on, as when a COMMIT's answer is lost and the database stays out
  // of reach; SetAvailable(true) brings it back.
  void LoseNextAnswer();

  // LoopStore (coordinator/loop_store.h). As in the PostgreSQL store, a job is assigned
  // only to an agent that said hello (UpsertAgent); any other assignment is Internal.
  Result<std::vector<QueuedJob>> PendingJobs() override;
  Result<std::vector<QueuedJob>> PendingJobsOf(const std::vector<uint64_t>& build_ids) override;
  Result<std::vector<JobRecord>> ActiveJobs() override;
  Result<std::vector<BuildRecord>> BuildsToMerge() override;
  Result<std::vector<uint32_t>> AssignJobs(const std::vector<JobAssignment>& assignments) override;
  Status SetWaitingReasons(const std::map<uint64_t, std::string>& reasons) override;
  Result<ResultOutcome> RecordJobResult(const std::string& agent_id, const JobResultMsg& result,
                                        uint32_t max_retries) override;
  Result<std::vector<ResultOutcome>> RecordJobReports(
      const std::vector<std::pair<std::string, JobUpdateMsg>>& phases,
      const std::vector<std::pair<std::string, JobResultMsg>>& results, uint32_t max_retries,
      std::vector<bool>* phases_current) override;
  Result<ResultOutcome> EndJob(uint64_t job_id, std::optional<uint32_t> attempt,
                               const std::string& state, const std::string& job_error,
                               const std::string& build_error) override;
  Result<LogAppend> AppendLog(const JobRef& job, const std::string& agent_id, uint64_t chunk_seq,
                              const std::string& data, const LogCap& cap) override;
  Result<double> CompleteBuild(uint64_t build_id, const std::string& index_digest,
                               const std::string& index_media_type) override;
  Status FailBuild(uint64_t build_id, const std::string& error) override;
  Status UpsertAgent(const HelloMsg& hello) override;
  Status SetAgentState(const std::string& agent_id, const std::string& state) override;
  Status RecordCachePush(const std::string& repository, const Platform& platform,
                         const std::string& cache_ref) override;
  Result<std::vector<CachePush>> CachePushes() override;
  uint64_t unknown_outcomes() const override;

 private:
  using Clock = std::chrono::system_clock;

  struct Build {
    BuildRecord record;             // without jobs: they live in jobs_
    std::vector<uint64_t> job_ids;  // in the order of the spec's platforms
    std::shared_ptr<const BuildSpec> spec;
    Clock::time_point created;
    std::optional<Clock::time_point> finished;
    std::vector<std::pair<uint64_t, LogChunkRecord>> logs;  // with each chunk's job id
  };
  // A job's output so far, as the PostgreSQL store's log_* columns of jobs.
  struct JobLog {
    JobLogSpan span;
    int64_t head_seq = 0;  // the head's last chunk, once it is full
    int64_t seam_seq = 0;  // the first tail chunk kept after a cut
    uint64_t cut_bytes = 0;
  };

  // All below run with mutex_ held.
  Status CheckAvailable(const char* what) const;
  // After a transition was applied: Unavailable (and the store down) if LoseNextAnswer.
  Status AnswerLost(const char* what);
  // The build with its jobs; their events only when `with_events`.
  BuildRecord Snapshot(const Build& build, bool with_events) const;
  void AddEvent(JobRecord& job, uint32_t attempt, const std::string& state,
                const std::string& agent_id, const std::string& detail);
  // The build ends as `state` (its error, if any, set by the caller).
  void Finish(Build& build, const std::string& state);
  bool SetPhase(const std::string& agent_id, const JobUpdateMsg& update);
  ResultOutcome RecordResult(const std::string& agent_id, const JobResultMsg& result,
                             uint32_t max_retries);
  ResultOutcome RecordSuccess(JobRecord& job, const std::string& agent_id,
                              const JobResultMsg& result);
  // Ends `job` as `state`, fails its build and cancels the build's other unfinished jobs.
  void EndJobLocked(JobRecord& job, const std::string& state, const std::string& job_error,
                    const std::string& build_error, ResultOutcome& outcome);

  mutable std::mutex mutex_;
  bool available_ = true;
  int complete_build_failures_ = 0;  // FailCompleteBuild
  bool lose_next_answer_ = false;
  uint64_t unknown_outcomes_ = 0;
  std::map<uint64_t, Build> builds_;
  std::map<uint64_t, JobRecord> jobs_;
  std::map<std::string, std::string> agent_states_;
  std::map<std::pair<std::string, Platform>, CachePush> cache_pushes_;
  std::set<std::tuple<uint64_t, uint32_t, uint64_t>> chunks_seen_;  // (job, attempt, chunk_seq)
  std::map<uint64_t, JobLog> job_logs_;                             // by job id
  uint64_t next_build_id_ = 1;
  uint64_t next_job_id_ = 1;
  int64_t next_log_seq_ = 1;
};

}  // namespace manifold::test
