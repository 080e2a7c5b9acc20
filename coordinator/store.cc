#include "coordinator/store.h"

#include <condition_variable>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <tuple>

#include "schema/migrations.h"

namespace manifold {
namespace {

using nlohmann::json;

constexpr const char* kTimestamp = "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'";

bool IsFinalJobState(const std::string& state) {
  return state == "succeeded" || state == "failed" || state == "timed_out" || state == "canceled";
}

std::string Rfc3339(const std::string& column) {
  return "to_char(" + column + " AT TIME ZONE 'UTC', " + kTimestamp + ")";
}

const char* PhaseState(JobPhase phase) {
  switch (phase) {
    case JobPhase::kAccepted:
      return "assigned";
    case JobPhase::kBuilding:
      return "building";
    case JobPhase::kPushing:
      return "pushing";
  }
  return "assigned";
}

std::string PlatformsJson(const std::vector<Platform>& platforms) {
  json list = json::array();
  for (const Platform& p : platforms) list.push_back(p.ToString());
  return list.dump();
}

// Values in the store were validated before they were written; a row that does not
// parse means the table was edited by hand, which is reported, not trusted.
std::vector<Platform> ParsePlatformsJson(const std::string& text) {
  std::vector<Platform> platforms;
  for (const auto& item : json::parse(text)) {
    Result<Platform> p = ParsePlatform(item.get<std::string>());
    if (!p.ok()) throw std::runtime_error("stored platform is invalid: " + p.status().message());
    platforms.push_back(*p);
  }
  return platforms;
}

Platform ParseStoredPlatform(const std::string& text) {
  Result<Platform> p = ParsePlatform(text);
  if (!p.ok()) throw std::runtime_error("stored platform is invalid: " + p.status().message());
  return *p;
}

const std::string kBuildColumns =
    "id, platforms::text, tags::text, context_digest, dockerfile, dockerfile_path, "
    "build_args::text, target, state, index_digest, index_media_type, error, " +
    Rfc3339("created_at") + ", " + Rfc3339("updated_at") +
    ", job_timeout_s, emulation, logs_pruned_at IS NOT NULL, labels::text, no_cache, pull, "
    "manifest_annotations::text, annotations::text, source, revision, coalesce(" +
    Rfc3339("merge_started_at") + ", ''), secret_ids::text";

const std::string kJobColumns =
    "id, build_id, platform, state, attempt, coalesce(agent_id, ''), emulated, manifest_digest, "
    "manifest_media_type, manifest_size, error, "
    "coalesce((extract(epoch FROM deadline) * 1000)::bigint, 0), placement";

// The statements of the hot path (a submit, a scheduling pass, a job's reports), prepared
// once per connection (on first use) so the server parses and plans each once.
struct Statement {
  const char* name;
  std::string sql;
};

// A build with one pending job per platform, in the build's order, each with its event;
// nothing when the idempotency key was seen before.
const Statement kCreateBuild{
    "create_build",
    "WITH build AS (INSERT INTO builds (idempotency_key, platforms, tags, context_digest, "
    "dockerfile, dockerfile_path, build_args, target, job_timeout_s, emulation, labels, "
    "no_cache, pull, manifest_annotations, annotations, source, revision, secret_ids) "
    "VALUES (NULLIF($1, ''), $2::jsonb, $3::jsonb, $4, $5, $6, $7::jsonb, $8, $9, $10, "
    "$11::jsonb, $12, $13, $14::jsonb, $15::jsonb, $16, $17, $18::jsonb) "
    "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id), "
    "job AS (INSERT INTO jobs (build_id, platform) SELECT build.id, platform "
    "FROM build, jsonb_array_elements_text($2::jsonb) WITH ORDINALITY AS p(platform, n) "
    "ORDER BY n RETURNING id), "
    "event AS (INSERT INTO job_events (job_id, attempt, state, detail) "
    "SELECT id, 0, 'pending', 'submitted' FROM job) "
    "SELECT id FROM build"};

// A scheduling pass, from a JSON list of assignments: the jobs still pending move to their
// agents, their builds start running, and each gets its event; returns (id, attempt).
const Statement kAssignJobs{
    "assign_jobs",
    "WITH wanted AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS "
    "w(job_id bigint, agent_id text, emulated boolean, placement text)), "
    "assigned AS (UPDATE jobs SET state = 'assigned', attempt = jobs.attempt + 1, "
    "agent_id = wanted.agent_id, emulated = wanted.emulated, placement = wanted.placement, "
    "error = '', updated_at = now(), deadline = now() + "
    "make_interval(secs => (SELECT job_timeout_s FROM builds WHERE id = jobs.build_id)) "
    "FROM wanted WHERE jobs.id = wanted.job_id AND jobs.state = 'pending' "
    "RETURNING jobs.id, jobs.attempt, jobs.build_id, jobs.agent_id, jobs.placement), "
    "running AS (UPDATE builds SET state = 'running', updated_at = now() "
    "WHERE id IN (SELECT build_id FROM assigned) AND state = 'queued'), "
    "events AS (INSERT INTO job_events (job_id, attempt, state, agent_id, detail) "
    "SELECT id, attempt, 'assigned', agent_id, placement FROM assigned) "
    "SELECT id, attempt FROM assigned"};

// The phases of (job $1, attempt $2, agent $3) that came together: the job takes the last
// one's state $4, and each state in $5 (in order) becomes an event; returns how many jobs
// moved (0: fenced).
const Statement kSetPhases{
    "set_phases",
    "WITH moved AS (UPDATE jobs SET state = $4, updated_at = now() "
    "WHERE id = $1 AND attempt = $2 AND agent_id = $3 "
    "AND state IN ('assigned', 'building', 'pushing') RETURNING id), "
    "event AS (INSERT INTO job_events (job_id, attempt, state, agent_id, detail) "
    "SELECT moved.id, $2, e.state, $3, '' FROM moved, "
    "unnest($5::text[]) WITH ORDINALITY AS e(state, n) ORDER BY e.n) "
    "SELECT count(*) FROM moved"};

// A succeeded result of (job $1, attempt $2, agent $3) with its image ($4 digest, $5 media
// type, $6 size): the job and its event, and the build, now merging, if every other job had
// succeeded. The statement sees the other jobs as they were before it, and this job is the
// one it changes, hence "id <> $1". Returns nothing when fenced, else the merging build's
// columns (NULL when it is not merging) and the build's id.
const Statement kRecordSuccess{
    "record_success",
    "WITH done AS (UPDATE jobs SET state = 'succeeded', manifest_digest = $4, "
    "manifest_media_type = $5, manifest_size = $6, updated_at = now(), deadline = NULL "
    "WHERE id = $1 AND attempt = $2 AND agent_id = $3 "
    "AND state IN ('assigned', 'building', 'pushing') RETURNING build_id), "
    "event AS (INSERT INTO job_events (job_id, attempt, state, agent_id, detail) "
    "SELECT $1, $2, 'succeeded', $3, $4 FROM done), "
    "merging AS (UPDATE builds SET state = 'merging', updated_at = now(), "
    "merge_started_at = now() WHERE id = (SELECT build_id FROM done) "
    "AND state IN ('queued', 'running') AND NOT EXISTS (SELECT 1 FROM jobs "
    "WHERE build_id = builds.id AND state <> 'succeeded' AND id <> $1) RETURNING " +
        kBuildColumns + ") SELECT merging.*, done.build_id FROM done LEFT JOIN merging ON true"};

const Statement kJobsOfBuild{
    "jobs_of_build", "SELECT " + kJobColumns + " FROM jobs WHERE build_id = $1 ORDER BY id"};
const Statement kBuildById{"build_by_id", "SELECT " + kBuildColumns + " FROM builds WHERE id = $1"};

const Statement* const kPrepared[] = {&kCreateBuild,   &kAssignJobs,  &kSetPhases,
                                      &kRecordSuccess, &kJobsOfBuild, &kBuildById};

std::map<std::string, std::string> ParseStringMap(const std::string& text) {
  return json::parse(text).get<std::map<std::string, std::string>>();
}

BuildRecord ReadBuild(const pqxx::row& row) {
  BuildRecord b;
  b.id = row[0].as<uint64_t>();
  b.spec.platforms = ParsePlatformsJson(row[1].as<std::string>());
  b.spec.tags = json::parse(row[2].as<std::string>()).get<std::vector<std::string>>();
  b.spec.context_digest = row[3].as<std::string>();
  b.spec.dockerfile = row[4].as<std::string>();
  b.spec.dockerfile_path = row[5].as<std::string>();
  b.spec.build_args = ParseStringMap(row[6].as<std::string>());
  b.spec.target = row[7].as<std::string>();
  b.state = row[8].as<std::string>();
  b.index_digest = row[9].as<std::string>();
  b.index_media_type = row[10].as<std::string>();
  b.error = row[11].as<std::string>();
  b.created_at = row[12].as<std::string>();
  b.updated_at = row[13].as<std::string>();
  b.spec.job_timeout_s = row[14].as<uint32_t>();
  b.spec.emulation =
      ParseEmulationPolicy(row[15].as<std::string>()).value_or(EmulationPolicy::kFallback);
  b.logs_pruned = row[16].as<bool>();
  b.spec.labels = ParseStringMap(row[17].as<std::string>());
  b.spec.no_cache = row[18].as<bool>();
  b.spec.pull = row[19].as<bool>();
  b.spec.manifest_annotations = ParseStringMap(row[20].as<std::string>());
  b.spec.index_annotations = ParseStringMap(row[21].as<std::string>());
  b.spec.source = row[22].as<std::string>();
  b.spec.revision = row[23].as<std::string>();
  b.merge_started_at = row[24].as<std::string>();
  b.spec.secret_ids = json::parse(row[25].as<std::string>()).get<std::vector<std::string>>();
  return b;
}

JobRecord ReadJob(const pqxx::row& row) {
  JobRecord j;
  j.id = row[0].as<uint64_t>();
  j.build_id = row[1].as<uint64_t>();
  j.platform = ParseStoredPlatform(row[2].as<std::string>());
  j.state = row[3].as<std::string>();
  j.attempt = row[4].as<uint32_t>();
  j.agent_id = row[5].as<std::string>();
  j.emulated = row[6].as<bool>();
  j.manifest.digest = row[7].as<std::string>();
  j.manifest.media_type = row[8].as<std::string>();
  j.manifest.size = row[9].as<uint64_t>();
  j.error = row[10].as<std::string>();
  j.deadline_unix_ms = row[11].as<int64_t>();
  j.placement = row[12].as<std::string>();
  return j;
}

// Loads builds (and their jobs) matching `where`, which may use $1.
template <typename... Args>
std::vector<BuildRecord> LoadBuilds(pqxx::transaction_base& tx, const std::string& tail,
                                    Args&&... args) {
  std::vector<BuildRecord> builds;
  std::map<uint64_t, size_t> position;
  for (const pqxx::row& row :
       tx.exec_params("SELECT " + kBuildColumns + " FROM builds " + tail, args...)) {
    position[row[0].as<uint64_t>()] = builds.size();
    builds.push_back(ReadBuild(row));
  }
  if (builds.empty()) return builds;
  json ids = json::array();
  for (const auto& b : builds) ids.push_back(b.id);
  for (const auto& row : tx.exec_params("SELECT " + kJobColumns +
                                            " FROM jobs WHERE build_id IN (SELECT "
                                            "jsonb_array_elements_text($1::jsonb)::bigint) "
                                            "ORDER BY id",
                                        ids.dump())) {
    JobRecord job = ReadJob(row);
    builds[position[job.build_id]].jobs.push_back(std::move(job));
  }
  return builds;
}

// One build and its jobs, by id, with prepared statements: the hot path's LoadBuilds.
std::optional<BuildRecord> LoadBuild(pqxx::transaction_base& tx, uint64_t id) {
  pqxx::result rows = tx.exec_prepared(kBuildById.name, id);
  if (rows.empty()) return std::nullopt;
  BuildRecord build = ReadBuild(rows[0]);
  for (const auto& job : tx.exec_prepared(kJobsOfBuild.name, id))
    build.jobs.push_back(ReadJob(job));
  return build;
}

// Adds each job's history to builds loaded by LoadBuilds.
void LoadEvents(pqxx::transaction_base& tx, std::vector<BuildRecord>& builds) {
  std::map<uint64_t, JobRecord*> jobs;
  json ids = json::array();
  for (auto& build : builds) {
    for (auto& job : build.jobs) {
      jobs[job.id] = &job;
      ids.push_back(job.id);
    }
  }
  if (jobs.empty()) return;
  for (const auto& row :
       tx.exec_params("SELECT job_id, attempt, state, coalesce(agent_id, ''), " + Rfc3339("at") +
                          ", detail FROM job_events WHERE job_id IN "
                          "(SELECT jsonb_array_elements_text($1::jsonb)::bigint) ORDER BY id",
                      ids.dump())) {
    jobs[row[0].as<uint64_t>()]->events.push_back(
        {row[1].as<uint32_t>(), row[2].as<std::string>(), row[3].as<std::string>(),
         row[4].as<std::string>(), row[5].as<std::string>()});
  }
}

void RecordEvent(pqxx::transaction_base& tx, uint64_t job_id, uint32_t attempt,
                 const std::string& state, const std::string& agent_id, const std::string& detail) {
  tx.exec_params(
      "INSERT INTO job_events (job_id, attempt, state, agent_id, detail) "
      "VALUES ($1, $2, $3, NULLIF($4, ''), $5)",
      job_id, attempt, state, agent_id, detail);
}

std::shared_ptr<const BuildSpec> LoadSpec(pqxx::transaction_base& tx, uint64_t build_id) {
  std::optional<BuildRecord> build = LoadBuild(tx, build_id);
  if (!build) throw std::runtime_error("build " + std::to_string(build_id) + " vanished");
  return std::make_shared<const BuildSpec>(build->spec);
}

// Ends `job` as `state`, fails its build and cancels the build's other unfinished jobs.
void EndJobInTx(pqxx::transaction_base& tx, const JobRecord& job, const std::string& state,
                const std::string& job_error, const std::string& build_error,
                ResultOutcome& outcome) {
  tx.exec_params(
      "UPDATE jobs SET state = $2, error = $3, updated_at = now(), deadline = NULL "
      "WHERE id = $1",
      job.id, state, job_error);
  RecordEvent(tx, job.id, job.attempt, state, job.agent_id, job_error);
  pqxx::result failed = tx.exec_params(
      "UPDATE builds SET state = 'failed', error = $2, updated_at = now(), finished_at = now() "
      "WHERE id = $1 AND state IN ('queued', 'running') RETURNING id",
      job.build_id, build_error);
  outcome.build_failed = !failed.empty();
  for (const auto& row :
       tx.exec_params("UPDATE jobs SET state = 'canceled', updated_at = now(), deadline = NULL, "
                      "error = 'canceled: another platform of the build failed' "
                      "WHERE build_id = $1 AND state IN ('pending', 'assigned', 'building', "
                      "'pushing') RETURNING " +
                          kJobColumns,
                      job.build_id)) {
    JobRecord canceled = ReadJob(row);
    RecordEvent(tx, canceled.id, canceled.attempt, "canceled", canceled.agent_id,
                "another platform failed");
    outcome.to_cancel.push_back(std::move(canceled));
  }
}

// For writes that a later durable write supersedes (job phases, log chunks, agent
// registrations): the commit does not wait for the WAL flush. PostgreSQL keeps it atomic
// and in order, and any later ordinary commit (a job's result, an assignment) flushes it
// too, so all a database crash can lose is the last fraction of a second of such progress,
// which the next message restores; the loop thread no longer waits a disk flush for each.
void CommitWithoutFlushWait(pqxx::work& tx) {
  tx.exec("SET LOCAL synchronous_commit = off");
  tx.commit();
}

// Phases (agent id, update), in the order they came, inside the caller's transaction: one
// statement for each job's run of phases (a zero-time build sends accepted, building and
// pushing at once), each fenced as SetJobPhase is. The answer for each phase: false if
// fenced.
std::vector<bool> SetPhasesInTx(pqxx::work& tx,
                                const std::vector<std::pair<std::string, JobUpdateMsg>>& phases) {
  struct Run {
    std::vector<size_t> members;  // positions in `phases`
    std::string events;           // the states that become events, as a text[] literal
  };
  std::vector<Run> runs;
  std::map<std::tuple<std::string, uint64_t, uint32_t>, size_t> run_of;
  for (size_t i = 0; i < phases.size(); ++i) {
    const auto& [agent_id, update] = phases[i];
    auto [it, added] =
        run_of.try_emplace({agent_id, update.job.job_id, update.job.attempt}, runs.size());
    if (added) runs.emplace_back();
    Run& run = runs[it->second];
    run.members.push_back(i);
    if (update.phase != JobPhase::kAccepted) {
      run.events += std::string(run.events.empty() ? "" : ",") + PhaseState(update.phase);
    }
  }
  std::vector<bool> current(phases.size());
  for (const Run& run : runs) {
    const auto& [agent_id, first] = phases[run.members.front()];
    JobPhase last = phases[run.members.back()].second.phase;
    bool moved = tx.exec_prepared1(kSetPhases.name, first.job.job_id, first.job.attempt, agent_id,
                                   std::string(PhaseState(last)), "{" + run.events + "}")[0]
                     .as<int>() > 0;
    for (size_t i : run.members) current[i] = moved;
  }
  return current;
}

// A succeeded result inside the caller's transaction (kRecordSuccess), with the build's
// jobs read for the merge when it was the build's last.
ResultOutcome RecordSuccessInTx(pqxx::work& tx, const std::string& agent_id,
                                const JobResultMsg& result) {
  ResultOutcome outcome;
  pqxx::result rows =
      tx.exec_prepared(kRecordSuccess.name, result.job.job_id, result.job.attempt, agent_id,
                       result.image.digest, result.image.media_type, result.image.size);
  if (rows.empty()) return outcome;  // stale: a retry or a cancel has superseded this attempt
  const pqxx::row& row = rows[0];
  outcome.current = true;
  outcome.build_id = row[row.size() - 1].as<uint64_t>();
  if (row[0].is_null()) return outcome;  // another job of the build has not succeeded yet
  BuildRecord build = ReadBuild(row);
  for (const auto& job : tx.exec_prepared(kJobsOfBuild.name, build.id)) {
    build.jobs.push_back(ReadJob(job));
  }
  outcome.to_merge = std::move(build);
  return outcome;
}

// One job result inside the caller's transaction; the caller commits.
ResultOutcome RecordResultInTx(pqxx::work& tx, const std::string& agent_id,
                               const JobResultMsg& result, uint32_t max_attempts) {
  if (result.succeeded) return RecordSuccessInTx(tx, agent_id, result);
  ResultOutcome outcome;
  pqxx::result rows = tx.exec_params(
      "SELECT " + kJobColumns + " FROM jobs WHERE id = $1 FOR UPDATE", result.job.job_id);
  if (rows.empty()) return outcome;
  JobRecord job = ReadJob(rows[0]);
  outcome.build_id = job.build_id;
  if (job.attempt != result.job.attempt || job.agent_id != agent_id || IsFinalJobState(job.state) ||
      job.state == "pending") {
    return outcome;  // stale: a retry or a cancel has superseded this attempt
  }
  outcome.current = true;

  if (result.retryable && job.attempt < max_attempts) {
    tx.exec_params(
        "UPDATE jobs SET state = 'pending', error = $2, updated_at = now(), deadline = NULL "
        "WHERE id = $1",
        job.id, result.error);
    RecordEvent(tx, job.id, job.attempt, "retry", agent_id, result.error);
    outcome.requeued = QueuedJob{job.id, job.build_id, job.platform, LoadSpec(tx, job.build_id)};
    return outcome;
  }

  std::string error = job.platform.ToString() + " failed on agent " + agent_id + " after " +
                      std::to_string(job.attempt) +
                      (job.attempt == 1 ? " attempt: " : " attempts: ") + result.error;
  EndJobInTx(tx, job, "failed", result.error, error, outcome);
  return outcome;
}

}  // namespace

// A bounded set of connections. Run() lends one to a function and turns libpqxx's
// exceptions into Status values; a connection that broke is not returned to the pool.
class Store::Pool {
 public:
  Pool(std::string url, int size) : url_(std::move(url)), size_(size) {}

  // A connection that sat idle through a database restart is dead; the first statement
  // finds out. Nothing was applied then, so the call is tried once more on a fresh one.
  template <typename T, typename F>
  Result<T> Run(const std::string& what, F&& f) {
    for (int attempt = 1;; ++attempt) {
      std::unique_ptr<pqxx::connection> connection;
      try {
        connection = Acquire();
        Result<T> result = f(*connection);
        Release(std::move(connection));
        return result;
      } catch (const pqxx::broken_connection& e) {
        if (connection) Discard();  // a failed Acquire has accounted for itself
        if (attempt < 2) continue;
        return Status::Unavailable("database unavailable during " + what + ": " + Trim(e.what()));
      } catch (const pqxx::sql_error& e) {
        Return(std::move(connection));
        return Status::Internal("database error during " + what + ": " + Trim(e.what()));
      } catch (const std::exception& e) {
        Return(std::move(connection));
        return Status::Unavailable("database failure during " + what + ": " + Trim(e.what()));
      }
    }
  }

  Status Check() {
    Result<bool> r = Run<bool>("connect", [](pqxx::connection&) -> Result<bool> { return true; });
    return r.status();
  }

 private:
  static std::string Trim(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
  }

  std::unique_ptr<pqxx::connection> Acquire() {
    {
      std::unique_lock lock(mutex_);
      available_.wait(lock, [&] { return !idle_.empty() || open_ < size_; });
      if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        return c;
      }
      ++open_;
    }
    try {
      auto connection = std::make_unique<pqxx::connection>(url_);
      for (const Statement* statement : kPrepared) {
        connection->prepare(statement->name, statement->sql);
      }
      return connection;
    } catch (...) {
      Discard();
      throw;
    }
  }

  void Release(std::unique_ptr<pqxx::connection> connection) {
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(connection));
    available_.notify_one();
  }

  // After an error: keep the connection if it still works, otherwise let it go.
  void Return(std::unique_ptr<pqxx::connection> connection) {
    if (!connection) return;  // Acquire itself failed and already accounted for it
    if (connection->is_open()) {
      Release(std::move(connection));
    } else {
      Discard();
    }
  }

  void Discard() {
    std::lock_guard lock(mutex_);
    --open_;
    available_.notify_one();
  }

  const std::string url_;
  const int size_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  int open_ = 0;  // connections lent out or idle
};

Store::Store(std::unique_ptr<Pool> pool) : pool_(std::move(pool)) {}
Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::Open(const std::string& url, int pool_size) {
  auto pool = std::make_unique<Pool>(url, pool_size);
  Status status = pool->Check();
  if (!status.ok()) return status;
  return std::unique_ptr<Store>(new Store(std::move(pool)));
}

Status Store::Migrate() {
  for (const Migration& migration : kMigrations) {
    Result<bool> applied =
        pool_->Run<bool>("migration " + migration.name, [&](pqxx::connection& c) -> Result<bool> {
          pqxx::work tx(c);
          // Serialises coordinators that start together against one database.
          tx.exec("SELECT pg_advisory_xact_lock(7419263)");
          tx.exec(
              "CREATE TABLE IF NOT EXISTS schema_migrations ("
              "name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())");
          if (!tx.exec_params("SELECT 1 FROM schema_migrations WHERE name = $1", migration.name)
                   .empty()) {
            return false;
          }
          tx.exec(migration.sql);
          tx.exec_params("INSERT INTO schema_migrations (name) VALUES ($1)", migration.name);
          tx.commit();
          return true;
        });
    if (!applied.ok()) return applied.status();
  }
  return Status::Ok();
}

Status Store::Ping() {
  return pool_
      ->Run<bool>("ping",
                  [](pqxx::connection& c) -> Result<bool> {
                    pqxx::nontransaction tx(c);
                    tx.exec("SELECT 1");
                    return true;
                  })
      .status();
}

Result<std::pair<BuildRecord, bool>> Store::CreateBuild(const BuildSpec& spec,
                                                        const std::string& idempotency_key) {
  using Created = std::pair<BuildRecord, bool>;
  return pool_->Run<Created>("create build", [&](pqxx::connection& c) -> Result<Created> {
    pqxx::work tx(c);
    json tags = spec.tags;
    json build_args = spec.build_args;
    json labels = spec.labels;
    json manifest_annotations = spec.manifest_annotations;
    json index_annotations = spec.index_annotations;
    json secret_ids = spec.secret_ids;
    pqxx::result inserted = tx.exec_prepared(
        kCreateBuild.name, idempotency_key, PlatformsJson(spec.platforms), tags.dump(),
        spec.context_digest, spec.dockerfile, spec.dockerfile_path, build_args.dump(), spec.target,
        spec.job_timeout_s, std::string(EmulationPolicyName(spec.emulation)), labels.dump(),
        spec.no_cache, spec.pull, manifest_annotations.dump(), index_annotations.dump(),
        spec.source, spec.revision, secret_ids.dump());
    if (inserted.empty()) {
      auto existing = LoadBuilds(tx, "WHERE idempotency_key = $1", idempotency_key);
      if (existing.empty()) return Status::Internal("idempotency key vanished during submit");
      return Created{existing[0], false};
    }
    uint64_t id = inserted[0][0].as<uint64_t>();
    std::optional<BuildRecord> build = LoadBuild(tx, id);
    if (!build) return Status::Internal("build " + std::to_string(id) + " vanished during submit");
    tx.commit();
    return Created{*build, true};
  });
}

Result<BuildRecord> Store::GetBuild(uint64_t id) {
  return pool_->Run<BuildRecord>("get build", [&](pqxx::connection& c) -> Result<BuildRecord> {
    pqxx::read_transaction tx(c);
    std::optional<BuildRecord> build = LoadBuild(tx, id);
    if (!build) return Status::NotFound("no build " + std::to_string(id));
    std::vector<BuildRecord> builds = {*std::move(build)};
    LoadEvents(tx, builds);
    return builds[0];
  });
}

Result<std::vector<BuildRecord>> Store::ListBuilds(int limit) {
  using Builds = std::vector<BuildRecord>;
  return pool_->Run<Builds>("list builds", [&](pqxx::connection& c) -> Result<Builds> {
    pqxx::read_transaction tx(c);
    return LoadBuilds(tx, "ORDER BY id DESC LIMIT $1", limit);
  });
}

Result<std::vector<QueuedJob>> Store::PendingJobs() {
  using Jobs = std::vector<QueuedJob>;
  return pool_->Run<Jobs>("load pending jobs", [&](pqxx::connection& c) -> Result<Jobs> {
    pqxx::read_transaction tx(c);
    std::map<uint64_t, std::shared_ptr<const BuildSpec>> specs;
    for (const BuildRecord& b : LoadBuilds(tx, "WHERE state IN ('queued', 'running')")) {
      specs[b.id] = std::make_shared<const BuildSpec>(b.spec);
    }
    Jobs jobs;
    for (const auto& row :
         tx.exec("SELECT " + kJobColumns + " FROM jobs WHERE state = 'pending' ORDER BY id")) {
      JobRecord job = ReadJob(row);
      auto spec = specs.find(job.build_id);
      if (spec == specs.end()) continue;  // its build already ended
      jobs.push_back({job.id, job.build_id, job.platform, spec->second});
    }
    return jobs;
  });
}

Result<std::vector<JobRecord>> Store::ActiveJobs() {
  using Jobs = std::vector<JobRecord>;
  return pool_->Run<Jobs>("load active jobs", [&](pqxx::connection& c) -> Result<Jobs> {
    pqxx::read_transaction tx(c);
    Jobs jobs;
    for (const auto& row : tx.exec("SELECT " + kJobColumns +
                                   " FROM jobs WHERE state IN ('assigned', 'building', 'pushing') "
                                   "ORDER BY id")) {
      jobs.push_back(ReadJob(row));
    }
    return jobs;
  });
}

Result<std::vector<BuildRecord>> Store::BuildsToMerge() {
  using Builds = std::vector<BuildRecord>;
  return pool_->Run<Builds>("load merging builds", [&](pqxx::connection& c) -> Result<Builds> {
    pqxx::read_transaction tx(c);
    return LoadBuilds(tx, "WHERE state = 'merging' ORDER BY id");
  });
}

Result<uint32_t> Store::AssignJob(uint64_t job_id, const std::string& agent_id, bool emulated,
                                  const std::string& placement) {
  Result<std::vector<uint32_t>> attempts = AssignJobs({{job_id, agent_id, emulated, placement}});
  if (!attempts.ok()) return attempts.status();
  if ((*attempts)[0] == 0) {
    return Status::FailedPrecondition("job " + std::to_string(job_id) + " is not pending");
  }
  return (*attempts)[0];
}

Result<std::vector<uint32_t>> Store::AssignJobs(const std::vector<JobAssignment>& assignments) {
  using Attempts = std::vector<uint32_t>;
  json wanted = json::array();
  for (const JobAssignment& a : assignments) {
    wanted.push_back({{"job_id", a.job_id},
                      {"agent_id", a.agent_id},
                      {"emulated", a.emulated},
                      {"placement", a.placement}});
  }
  return pool_->Run<Attempts>("assign jobs", [&](pqxx::connection& c) -> Result<Attempts> {
    pqxx::work tx(c);
    std::map<uint64_t, uint32_t> assigned;
    for (const auto& row : tx.exec_prepared(kAssignJobs.name, wanted.dump())) {
      assigned[row[0].as<uint64_t>()] = row[1].as<uint32_t>();
    }
    tx.commit();
    Attempts attempts;
    for (const JobAssignment& a : assignments) {
      auto it = assigned.find(a.job_id);
      attempts.push_back(it == assigned.end() ? 0 : it->second);
    }
    return attempts;
  });
}

Result<bool> Store::SetJobPhase(const JobRef& job, const std::string& agent_id, JobPhase phase) {
  std::vector<bool> current;
  Result<std::vector<ResultOutcome>> recorded =
      RecordJobReports({{agent_id, JobUpdateMsg{job, phase}}}, {}, 0, &current);
  if (!recorded.ok()) return recorded.status();
  return static_cast<bool>(current.at(0));
}

Result<ResultOutcome> Store::RecordJobResult(const std::string& agent_id,
                                             const JobResultMsg& result, uint32_t max_attempts) {
  Result<std::vector<ResultOutcome>> outcomes =
      RecordJobResults({{agent_id, result}}, max_attempts);
  if (!outcomes.ok()) return outcomes.status();
  return std::move((*outcomes)[0]);
}

Result<std::vector<ResultOutcome>> Store::RecordJobResults(
    const std::vector<std::pair<std::string, JobResultMsg>>& results, uint32_t max_attempts) {
  return RecordJobReports({}, results, max_attempts, nullptr);
}

Result<std::vector<ResultOutcome>> Store::RecordJobReports(
    const std::vector<std::pair<std::string, JobUpdateMsg>>& phases,
    const std::vector<std::pair<std::string, JobResultMsg>>& results, uint32_t max_attempts,
    std::vector<bool>* phases_current) {
  using Outcomes = std::vector<ResultOutcome>;
  return pool_->Run<Outcomes>("record job reports", [&](pqxx::connection& c) -> Result<Outcomes> {
    pqxx::work tx(c);
    std::vector<bool> current = SetPhasesInTx(tx, phases);
    Outcomes outcomes;
    for (const auto& [agent_id, result] : results) {
      outcomes.push_back(RecordResultInTx(tx, agent_id, result, max_attempts));
    }
    if (results.empty()) {
      CommitWithoutFlushWait(tx);
    } else {
      tx.commit();
    }
    if (phases_current != nullptr) *phases_current = std::move(current);
    return outcomes;
  });
}

Result<ResultOutcome> Store::EndJob(uint64_t job_id, std::optional<uint32_t> attempt,
                                    const std::string& state, const std::string& job_error,
                                    const std::string& build_error) {
  return pool_->Run<ResultOutcome>("end job", [&](pqxx::connection& c) -> Result<ResultOutcome> {
    pqxx::work tx(c);
    ResultOutcome outcome;
    pqxx::result rows =
        tx.exec_params("SELECT " + kJobColumns + " FROM jobs WHERE id = $1 FOR UPDATE", job_id);
    if (rows.empty()) return outcome;
    JobRecord job = ReadJob(rows[0]);
    outcome.build_id = job.build_id;
    if (IsFinalJobState(job.state) || (attempt && *attempt != job.attempt)) return outcome;
    outcome.current = true;
    EndJobInTx(tx, job, state, job_error, build_error, outcome);
    tx.commit();
    return outcome;
  });
}

Result<std::vector<JobRecord>> Store::CancelBuild(uint64_t build_id) {
  using Jobs = std::vector<JobRecord>;
  return pool_->Run<Jobs>("cancel build", [&](pqxx::connection& c) -> Result<Jobs> {
    pqxx::work tx(c);
    pqxx::result build =
        tx.exec_params("SELECT state FROM builds WHERE id = $1 FOR UPDATE", build_id);
    if (build.empty()) return Status::NotFound("no build " + std::to_string(build_id));
    std::string state = build[0][0].as<std::string>();
    if (state != "queued" && state != "running") {
      return Status::FailedPrecondition(
          "build " + std::to_string(build_id) + " is " + state +
          (state == "merging" ? "; its index is being pushed" : " and cannot be canceled"));
    }
    tx.exec_params(
        "UPDATE builds SET state = 'canceled', error = 'canceled by request', "
        "updated_at = now(), finished_at = now() WHERE id = $1",
        build_id);
    Jobs held;
    for (const auto& row :
         tx.exec_params("UPDATE jobs SET state = 'canceled', updated_at = now(), deadline = NULL, "
                        "error = 'canceled by request' WHERE build_id = $1 AND state IN "
                        "('pending', 'assigned', 'building', 'pushing') RETURNING " +
                            kJobColumns,
                        build_id)) {
      JobRecord job = ReadJob(row);
      RecordEvent(tx, job.id, job.attempt, "canceled", job.agent_id, "canceled by request");
      if (job.attempt > 0 && !job.agent_id.empty()) held.push_back(std::move(job));
    }
    tx.commit();
    return held;
  });
}

Result<bool> Store::AppendLog(const JobRef& job, const std::string& agent_id, uint64_t chunk_seq,
                              const std::string& data) {
  return pool_->Run<bool>("append log", [&](pqxx::connection& c) -> Result<bool> {
    pqxx::work tx(c);
    pqxx::result owner =
        tx.exec_params("SELECT build_id FROM jobs WHERE id = $1 AND agent_id = $2 AND attempt = $3",
                       job.job_id, agent_id, job.attempt);
    if (owner.empty()) return false;
    tx.exec_params(
        "INSERT INTO log_chunks (build_id, job_id, attempt, chunk_seq, data) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job_id, attempt, chunk_seq) DO NOTHING",
        owner[0][0].as<uint64_t>(), job.job_id, job.attempt, chunk_seq,
        pqxx::binarystring(data.data(), data.size()));
    CommitWithoutFlushWait(tx);
    return true;
  });
}

Result<std::vector<LogChunkRecord>> Store::ListLogs(uint64_t build_id, int64_t after, int limit) {
  using Chunks = std::vector<LogChunkRecord>;
  return pool_->Run<Chunks>("list logs", [&](pqxx::connection& c) -> Result<Chunks> {
    pqxx::read_transaction tx(c);
    Chunks chunks;
    for (const auto& row :
         tx.exec_params("SELECT l.seq, j.platform, l.attempt, l.data FROM log_chunks l "
                        "JOIN jobs j ON j.id = l.job_id WHERE l.build_id = $1 AND l.seq > $2 "
                        "ORDER BY l.seq LIMIT $3",
                        build_id, after, limit)) {
      pqxx::binarystring data(row[3]);
      chunks.push_back(
          {row[0].as<int64_t>(), row[1].as<std::string>(), row[2].as<uint32_t>(), data.str()});
    }
    return chunks;
  });
}

Result<int> Store::PruneLogs(std::chrono::seconds keep, int max_builds) {
  return pool_->Run<int>("prune logs", [&](pqxx::connection& c) -> Result<int> {
    pqxx::work tx(c);
    pqxx::result pruned = tx.exec_params(
        "UPDATE builds SET logs_pruned_at = now() WHERE id IN (SELECT id FROM builds "
        "WHERE finished_at IS NOT NULL AND logs_pruned_at IS NULL "
        "AND finished_at < now() - make_interval(secs => $1) ORDER BY finished_at LIMIT $2) "
        "RETURNING id",
        static_cast<int64_t>(keep.count()), max_builds);
    for (const auto& row : pruned) {
      tx.exec_params("DELETE FROM log_chunks WHERE build_id = $1", row[0].as<uint64_t>());
    }
    tx.commit();
    return static_cast<int>(pruned.size());
  });
}

Result<double> Store::CompleteBuild(uint64_t build_id, const std::string& index_digest,
                                    const std::string& index_media_type) {
  return pool_->Run<double>("complete build", [&](pqxx::connection& c) -> Result<double> {
    pqxx::work tx(c);
    pqxx::result done = tx.exec_params(
        "UPDATE builds SET state = 'succeeded', index_digest = $2, index_media_type = $3, "
        "updated_at = now(), finished_at = now() WHERE id = $1 AND state = 'merging' "
        "RETURNING extract(epoch FROM now() - created_at)::float8",
        build_id, index_digest, index_media_type);
    tx.commit();
    return done.empty() ? 0.0 : done[0][0].as<double>();
  });
}

Result<std::map<std::string, int>> Store::CountBuildsByState() {
  using Counts = std::map<std::string, int>;
  return pool_->Run<Counts>("count builds", [&](pqxx::connection& c) -> Result<Counts> {
    pqxx::read_transaction tx(c);
    Counts counts;
    for (const auto& row : tx.exec("SELECT state, count(*) FROM builds GROUP BY state")) {
      counts[row[0].as<std::string>()] = row[1].as<int>();
    }
    return counts;
  });
}

Status Store::FailBuild(uint64_t build_id, const std::string& error) {
  return pool_
      ->Run<bool>("fail build",
                  [&](pqxx::connection& c) -> Result<bool> {
                    pqxx::work tx(c);
                    tx.exec_params(
                        "UPDATE builds SET state = 'failed', error = $2, updated_at = now(), "
                        "finished_at = now() WHERE id = $1 "
                        "AND state IN ('queued', 'running', 'merging')",
                        build_id, error);
                    tx.commit();
                    return true;
                  })
      .status();
}

Status Store::UpsertAgent(const HelloMsg& hello) {
  json platforms = json::array();
  for (const PlatformOffer& offer : hello.platforms) {
    platforms.push_back({{"platform", offer.platform.ToString()}, {"emulated", offer.emulated}});
  }
  json labels = hello.labels;
  return pool_
      ->Run<bool>("register agent",
                  [&](pqxx::connection& c) -> Result<bool> {
                    pqxx::work tx(c);
                    tx.exec_params(
                        "INSERT INTO agents (id, hostname, platforms, slots, labels, version, "
                        "state) VALUES ($1, $2, $3::jsonb, $4, $5::jsonb, $6, 'online') "
                        "ON CONFLICT (id) DO UPDATE SET hostname = $2, platforms = $3::jsonb, "
                        "slots = $4, labels = $5::jsonb, version = $6, state = 'online', "
                        "last_seen = now()",
                        hello.agent_id, hello.hostname, platforms.dump(), hello.slots,
                        labels.dump(), hello.version);
                    CommitWithoutFlushWait(tx);
                    return true;
                  })
      .status();
}

Status Store::SetAgentState(const std::string& agent_id, const std::string& state) {
  return pool_
      ->Run<bool>("update agent",
                  [&](pqxx::connection& c) -> Result<bool> {
                    pqxx::work tx(c);
                    tx.exec_params("UPDATE agents SET state = $2, last_seen = now() WHERE id = $1",
                                   agent_id, state);
                    CommitWithoutFlushWait(tx);
                    return true;
                  })
      .status();
}

Status Store::CreateApiToken(const std::string& name, const std::string& id,
                             const std::string& hash) {
  Result<bool> created =
      pool_->Run<bool>("create API token", [&](pqxx::connection& c) -> Result<bool> {
        pqxx::work tx(c);
        pqxx::result r = tx.exec_params(
            "INSERT INTO api_tokens (id, name, token_hash) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING RETURNING id",
            id, name, hash);
        tx.commit();
        return !r.empty();
      });
  if (!created.ok()) return created.status();
  if (!*created) {
    return Status::AlreadyExists("a token named " + name +
                                 " exists; revoke it first or choose another name");
  }
  return Status::Ok();
}

Result<std::vector<ApiTokenRecord>> Store::ListApiTokens() {
  return pool_->Run<std::vector<ApiTokenRecord>>(
      "list API tokens", [&](pqxx::connection& c) -> Result<std::vector<ApiTokenRecord>> {
        pqxx::nontransaction tx(c);
        pqxx::result rows =
            tx.exec("SELECT id, name, " + Rfc3339("created_at") + ", " + "coalesce(" +
                    Rfc3339("revoked_at") + ", '') FROM api_tokens ORDER BY created_at, id");
        std::vector<ApiTokenRecord> tokens;
        for (const auto& row : rows) {
          tokens.push_back({row[0].as<std::string>(), row[1].as<std::string>(),
                            row[2].as<std::string>(), row[3].as<std::string>()});
        }
        return tokens;
      });
}

Status Store::RevokeApiToken(const std::string& name) {
  Result<bool> revoked =
      pool_->Run<bool>("revoke API token", [&](pqxx::connection& c) -> Result<bool> {
        pqxx::work tx(c);
        pqxx::result r = tx.exec_params(
            "UPDATE api_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL "
            "RETURNING id",
            name);
        tx.commit();
        return !r.empty();
      });
  if (!revoked.ok()) return revoked.status();
  if (!*revoked) {
    return Status::NotFound("no token named " + name +
                            " is in force (list them with `manifold-coordinator token list`)");
  }
  return Status::Ok();
}

Result<std::optional<std::string>> Store::ApiTokenHash(const std::string& id) {
  return pool_->Run<std::optional<std::string>>(
      "check API token", [&](pqxx::connection& c) -> Result<std::optional<std::string>> {
        pqxx::nontransaction tx(c);
        pqxx::result r = tx.exec_params(
            "SELECT token_hash FROM api_tokens WHERE id = $1 AND revoked_at IS NULL", id);
        if (r.empty()) return std::optional<std::string>();
        return std::optional<std::string>(r[0][0].as<std::string>());
      });
}

}  // namespace manifold
