// Store: all durable state of the coordinator, in PostgreSQL (libpqxx 6): the persistence
// of the domain in coordinator/build.h, and the loop's LoopStore.
//
// The store is the truth; the coordinator's in-memory view is rebuilt from it at start.
// Every job transition is one transaction (AssignJobs: one for a whole scheduling pass),
// and every message about a job is fenced on (job, attempt, agent): a write for an
// attempt that is no longer current changes nothing and says so. Progress that a later
// write supersedes (job phases, log chunks, agent registrations and states) commits
// without waiting for the WAL flush; results, assignments and build transitions wait for
// it as usual. Thread-safe: a small pool of connections serves callers from any thread; a
// broken connection is dropped and replaced on next use, and database errors come back as
// Status::Unavailable so callers can retry or report not-ready. A commit whose answer was
// lost with its connection is resolved by reading its fate back (coordinator/store_pool.h).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/messages.h"
#include "common/status.h"
#include "coordinator/build.h"
#include "coordinator/loop_store.h"
#include "coordinator/retention_store.h"

namespace manifold {

struct ApiTokenRecord {
  std::string id;
  std::string name;
  std::string created_at;
  std::string revoked_at;  // "" while in force
};

class Store final : public LoopStore, public RetentionStore {
 public:
  // Connects (one connection up front, more on demand up to pool_size). A COMMIT whose
  // answer was lost is read back for up to `read_back_wait` (coordinator/store_pool.h).
  static Result<std::unique_ptr<Store>> Open(
      const std::string& url, int pool_size = 8,
      std::chrono::milliseconds read_back_wait = std::chrono::seconds(5));
  ~Store() override;

  // Applies the embedded migrations not yet recorded in schema_migrations.
  Status Migrate();
  // Fences every later write on leadership `epoch` (coordinator/leader_lease.h): a write
  // after another coordinator took the lease fails, and on_fenced is called.
  void FenceWrites(int64_t epoch, std::function<void(const std::string& why)> on_fenced);
  // From here on, each new build and each cancel also NOTIFYs kWorkChannel in its own
  // transaction, naming the build and `origin` (this coordinator's leader name), so the
  // leader's loop hears of work another coordinator's API took (coordinator/work_listener.h).
  // Set once, before the API starts.
  void AnnounceWork(std::string origin) {
    origin_ = std::move(origin);
    announcing_ = true;
  }
  // Once this coordinator leads, nobody listens for what its own API takes.
  void StopAnnouncingWork() { announcing_ = false; }
  static constexpr const char* kWorkChannel = "manifold_work";
  // The context grant key every coordinator of this database shares: the one stored, or
  // `fresh` if none was yet (coordinator/api_auth.h).
  Result<std::string> ContextGrantKey(const std::string& fresh);
  Status Ping();

  // Inserts a build and one pending job per platform in one transaction. With a
  // non-empty idempotency key that was seen before, returns that build and false.
  Result<std::pair<BuildRecord, bool>> CreateBuild(const BuildSpec& spec,
                                                   const std::string& idempotency_key);
  Result<BuildRecord> GetBuild(uint64_t id) override;
  // Whether `id` was handed out to a build: one that is not found then was deleted (under
  // the retention; ids are never reused).
  Result<bool> BuildIdIssued(uint64_t id);
  Result<std::vector<BuildRecord>> ListBuilds(int limit);
  // The build contexts that queued and running builds still need (the context collector
  // keeps them).
  Result<std::set<std::string>> ContextsOfUnfinishedBuilds();

  // pending -> assigned with attempt + 1; returns the new attempt. FailedPrecondition if
  // the job is no longer pending (canceled meanwhile).
  Result<uint32_t> AssignJob(uint64_t job_id, const std::string& agent_id, bool emulated,
                             const std::string& placement);
  // assigned/building -> building/pushing; false if fenced.
  Result<bool> SetJobPhase(const JobRef& job, const std::string& agent_id, JobPhase phase);
  // RecordJobResult for results (agent id, result) that arrived together, in order, in one
  // transaction: one commit for all of them, and all or nothing.
  Result<std::vector<ResultOutcome>> RecordJobResults(
      const std::vector<std::pair<std::string, JobResultMsg>>& results, uint32_t max_retries);
  // queued/running -> canceled with every unfinished job; returns the jobs agents hold so
  // they can be told. FailedPrecondition once the build is merging or has ended.
  Result<std::vector<JobRecord>> CancelBuild(uint64_t build_id);
  Result<std::vector<LogChunkRecord>> ListLogs(uint64_t build_id, int64_t after, int limit);

  // LoopStore (coordinator/loop_store.h). A scheduling pass is one statement; a loop
  // turn's phases and results are one transaction, whose commit waits for the WAL flush
  // only when it holds a result.
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

  // RetentionStore (coordinator/retention_store.h), in coordinator/store_retention.cc.
  Result<std::map<std::string, int>> PruneBuilds(std::chrono::seconds keep,
                                                 int max_builds) override;
  Result<int> PruneAgents(std::chrono::seconds keep,
                          const std::vector<std::string>& connected) override;
  Result<std::map<std::string, int>> CountBuilds(bool finished) override;

  // API tokens (coordinator/api_auth.h): only hashes are stored.
  // AlreadyExists if a token in force has this name.
  Status CreateApiToken(const std::string& name, const std::string& id, const std::string& hash);
  Result<std::vector<ApiTokenRecord>> ListApiTokens();
  // NotFound if no token in force has this name.
  Status RevokeApiToken(const std::string& name);
  // The hash of the token in force with this id, nullopt if none.
  Result<std::optional<std::string>> ApiTokenHash(const std::string& id);

 private:
  class Pool;
  explicit Store(std::unique_ptr<Pool> pool);
  // Pending jobs of queued and running builds; of these only when `build_ids` (a
  // comma-separated list of numbers) is not "".
  Result<std::vector<QueuedJob>> LoadPendingJobs(const std::string& build_ids);
  std::unique_ptr<Pool> pool_;
  std::string origin_;  // set before the API's threads start
  std::atomic<bool> announcing_{false};
};

}  // namespace manifold
