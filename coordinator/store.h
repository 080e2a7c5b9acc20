// Store: all durable state of the coordinator, in PostgreSQL (libpqxx 6).
//
// The store is the truth; the coordinator's in-memory view is rebuilt from it at start.
// Every job transition is one transaction (AssignJobs: one for a whole scheduling pass),
// and every message about a job is fenced on (job, attempt, agent): a write for an
// attempt that is no longer current changes nothing and says so. Progress that a later
// write supersedes (job phases, log chunks, agent registrations and states) commits
// without waiting for the WAL flush; results, assignments and build transitions wait for
// it as usual. Thread-safe: a small pool of connections serves callers from any thread; a
// broken connection is dropped and replaced on next use, and database errors come back as
// Status::Unavailable so callers can retry or report not-ready.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/messages.h"
#include "common/platform.h"
#include "common/status.h"
#include "coordinator/scheduler.h"

namespace manifold {

// What a client asked to build; fixed once the build is submitted.
struct BuildSpec {
  std::vector<Platform> platforms;
  std::vector<std::string> tags;  // full references, each parsed at the API boundary
  std::string context_digest;
  std::string dockerfile;
  std::string dockerfile_path = "Dockerfile";
  std::map<std::string, std::string> build_args;
  std::string target;
  std::map<std::string, std::string> labels;
  bool no_cache = false;
  bool pull = false;  // pull base images always, as buildx --pull
  // Annotations for each platform's manifest, and for the index the merger pushes.
  std::map<std::string, std::string> manifest_annotations;
  std::map<std::string, std::string> index_annotations;
  // Where the sources come from and at which commit; the index's
  // org.opencontainers.image.source and .revision unless index_annotations name them.
  std::string source;
  std::string revision;
  uint32_t job_timeout_s = 3600;  // an attempt running longer ends as timed_out
  EmulationPolicy emulation = EmulationPolicy::kFallback;
  // The ids of the build's secrets (--secret). Their bytes are never part of the spec: the
  // coordinator holds them in memory only (Coordinator::Enqueue).
  std::vector<std::string> secret_ids;
};

// One state change of a job, from job_events: the job's history across attempts.
struct JobEvent {
  uint32_t attempt = 0;
  std::string state;  // pending|assigned|building|pushing|retry|succeeded|failed|timed_out|canceled
  std::string agent_id;
  std::string at;  // RFC 3339, UTC
  std::string detail;
};

struct JobRecord {
  uint64_t id = 0;
  uint64_t build_id = 0;
  Platform platform;
  std::string state;  // pending|assigned|building|pushing|succeeded|failed|timed_out|canceled
  uint32_t attempt = 0;
  std::string agent_id;
  bool emulated = false;
  std::string placement;  // why the scheduler chose the agent: "native, least loaded"
  ImageDescriptor manifest;
  std::string error;
  int64_t deadline_unix_ms = 0;  // of the current attempt; 0 when not running
  std::vector<JobEvent> events;  // filled by GetBuild
};

struct BuildRecord {
  uint64_t id = 0;
  BuildSpec spec;
  std::string state;  // queued|running|merging|succeeded|failed|canceled
  std::string index_digest;
  std::string index_media_type;
  std::string error;
  std::string created_at;  // RFC 3339, UTC
  std::string updated_at;
  bool logs_pruned = false;  // the log was deleted under the log retention
  // When every job had succeeded and merging began; the index's created annotation, so a
  // merge repeated after a restart pushes the same bytes. "" before then.
  std::string merge_started_at;
  std::vector<JobRecord> jobs;
};

// A pending job with what an agent needs to build it.
struct QueuedJob {
  uint64_t job_id = 0;
  uint64_t build_id = 0;
  Platform platform;
  std::shared_ptr<const BuildSpec> spec;
};

struct LogChunkRecord {
  int64_t seq = 0;
  std::string platform;
  uint32_t attempt = 0;
  std::string data;
};

// One scheduling decision for AssignJobs.
struct JobAssignment {
  uint64_t job_id = 0;
  std::string agent_id;
  bool emulated = false;
  std::string placement;  // why the scheduler chose the agent
};

// What a job result did to its build.
struct ResultOutcome {
  bool current = false;  // false: the (job, attempt, agent) was stale; nothing changed
  uint64_t build_id = 0;
  // Every job of the build has succeeded: the build, now merging, with its jobs, read in
  // the transaction that recorded the result, so the merge starts without another read.
  std::optional<BuildRecord> to_merge;
  bool build_failed = false;          // this result failed the build
  std::vector<JobRecord> to_cancel;   // running jobs of the failed build, now canceled
  std::optional<QueuedJob> requeued;  // a retryable failure put the job back in the queue
};

struct ApiTokenRecord {
  std::string id;
  std::string name;
  std::string created_at;
  std::string revoked_at;  // "" while in force
};

class Store {
 public:
  // Connects (one connection up front, more on demand up to pool_size).
  static Result<std::unique_ptr<Store>> Open(const std::string& url, int pool_size = 8);
  ~Store();

  // Applies the embedded migrations not yet recorded in schema_migrations.
  Status Migrate();
  Status Ping();

  // Inserts a build and one pending job per platform in one transaction. With a
  // non-empty idempotency key that was seen before, returns that build and false.
  Result<std::pair<BuildRecord, bool>> CreateBuild(const BuildSpec& spec,
                                                   const std::string& idempotency_key);
  Result<BuildRecord> GetBuild(uint64_t id);
  Result<std::vector<BuildRecord>> ListBuilds(int limit);

  // Jobs waiting for an agent, oldest first, for the scheduler's view at start-up.
  Result<std::vector<QueuedJob>> PendingJobs();
  // Jobs an agent holds (assigned, building, pushing), for the view at start-up.
  Result<std::vector<JobRecord>> ActiveJobs();
  // Builds left in state merging (the coordinator stopped while merging), with their jobs.
  Result<std::vector<BuildRecord>> BuildsToMerge();

  // pending -> assigned with attempt + 1; returns the new attempt. FailedPrecondition if
  // the job is no longer pending (canceled meanwhile).
  Result<uint32_t> AssignJob(uint64_t job_id, const std::string& agent_id, bool emulated,
                             const std::string& placement);
  // AssignJob for several jobs in one transaction, so a scheduling pass waits for one
  // commit: each entry's new attempt, or 0 for a job that was no longer pending.
  Result<std::vector<uint32_t>> AssignJobs(const std::vector<JobAssignment>& assignments);
  // assigned/building -> building/pushing; false if fenced.
  Result<bool> SetJobPhase(const JobRef& job, const std::string& agent_id, JobPhase phase);
  // Records a job's result. A retryable failure below max_attempts returns the job to
  // pending; any other failure fails the job and its build, canceling the rest.
  Result<ResultOutcome> RecordJobResult(const std::string& agent_id, const JobResultMsg& result,
                                        uint32_t max_attempts);
  // RecordJobResult for results (agent id, result) that arrived together, in order, in one
  // transaction: one commit for all of them, and all or nothing.
  Result<std::vector<ResultOutcome>> RecordJobResults(
      const std::vector<std::pair<std::string, JobResultMsg>>& results, uint32_t max_attempts);
  // Phases (agent id, update) that arrived together, as SetJobPhase does, then results, as
  // RecordJobResults does, all in one transaction, in that order: a zero-time build's
  // accepted, building, pushing and result cost one commit, which waits for the WAL flush
  // only when it holds a result. *phases_current gets SetJobPhase's answer for each phase.
  Result<std::vector<ResultOutcome>> RecordJobReports(
      const std::vector<std::pair<std::string, JobUpdateMsg>>& phases,
      const std::vector<std::pair<std::string, JobResultMsg>>& results, uint32_t max_attempts,
      std::vector<bool>* phases_current);
  // Ends a job that can no longer succeed, as `state` ("failed" or "timed_out"), failing
  // its build with `build_error` and canceling the build's other jobs. With an attempt,
  // only while the job is still at that attempt; a job already ended is left alone.
  Result<ResultOutcome> EndJob(uint64_t job_id, std::optional<uint32_t> attempt,
                               const std::string& state, const std::string& job_error,
                               const std::string& build_error);
  // queued/running -> canceled with every unfinished job; returns the jobs agents hold so
  // they can be told. FailedPrecondition once the build is merging or has ended.
  Result<std::vector<JobRecord>> CancelBuild(uint64_t build_id);
  // Appends build output; a chunk seen before is ignored. False if fenced.
  Result<bool> AppendLog(const JobRef& job, const std::string& agent_id, uint64_t chunk_seq,
                         const std::string& data);
  Result<std::vector<LogChunkRecord>> ListLogs(uint64_t build_id, int64_t after, int limit);
  // Deletes the logs of builds that finished more than `keep` ago, at most `max_builds`
  // of them per call (oldest first), and marks them pruned; returns how many.
  Result<int> PruneLogs(std::chrono::seconds keep, int max_builds);

  // merging -> succeeded with the pushed index; returns seconds from submit to now.
  Result<double> CompleteBuild(uint64_t build_id, const std::string& index_digest,
                               const std::string& index_media_type);
  // merging/queued/running -> failed.
  Status FailBuild(uint64_t build_id, const std::string& error);

  Result<std::map<std::string, int>> CountBuildsByState();

  Status UpsertAgent(const HelloMsg& hello);
  Status SetAgentState(const std::string& agent_id, const std::string& state);

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
  std::unique_ptr<Pool> pool_;
};

}  // namespace manifold
