#include "coordinator/store_rows.h"

#include "coordinator/job_rules.h"
#include "coordinator/store.h"

namespace manifold::store_internal {
namespace {

using nlohmann::json;

constexpr const char* kTimestamp = "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'";

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

std::map<std::string, std::string> ParseStringMap(const std::string& text) {
  return json::parse(text).get<std::map<std::string, std::string>>();
}

}  // namespace

std::string Rfc3339(const std::string& column) {
  return "to_char(" + column + " AT TIME ZONE 'UTC', " + kTimestamp + ")";
}

const std::string kBuildColumns =
    "id, platforms::text, tags::text, context_digest, dockerfile, dockerfile_path, "
    "build_args::text, target, state, index_digest, index_media_type, error, " +
    Rfc3339("created_at") + ", " + Rfc3339("updated_at") +
    ", job_timeout_s, emulation, logs_pruned_at IS NOT NULL, labels::text, no_cache, pull, "
    "manifest_annotations::text, annotations::text, source, revision, coalesce(" +
    Rfc3339("merge_started_at") +
    ", ''), secret_ids::text, network, entitlements::text, job_memory_bytes, job_cpu_millis, "
    "job_pids, job_disk_bytes, cache_from::text, cache_to, cache_mode";

const std::string kJobColumns =
    "id, build_id, platform, state, attempt, coalesce(agent_id, ''), emulated, manifest_digest, "
    "manifest_media_type, manifest_size, error, "
    "coalesce((extract(epoch FROM deadline) * 1000)::bigint, 0), placement, retries";

const Statement kCreateBuild{
    "create_build",
    "WITH build AS (INSERT INTO builds (idempotency_key, platforms, tags, context_digest, "
    "dockerfile, dockerfile_path, build_args, target, job_timeout_s, emulation, labels, "
    "no_cache, pull, manifest_annotations, annotations, source, revision, secret_ids, network, "
    "entitlements, job_memory_bytes, job_cpu_millis, job_pids, job_disk_bytes, cache_from, "
    "cache_to, cache_mode) "
    "VALUES (NULLIF($1, ''), $2::jsonb, $3::jsonb, $4, $5, $6, $7::jsonb, $8, $9, $10, "
    "$11::jsonb, $12, $13, $14::jsonb, $15::jsonb, $16, $17, $18::jsonb, $19, $20::jsonb, $21, "
    "$22, $23, $24, $25::jsonb, $26, $27) "
    "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id), "
    "job AS (INSERT INTO jobs (build_id, platform) SELECT build.id, platform "
    "FROM build, jsonb_array_elements_text($2::jsonb) WITH ORDINALITY AS p(platform, n) "
    "ORDER BY n RETURNING id), "
    "event AS (INSERT INTO job_events (job_id, attempt, state, detail) "
    "SELECT id, 0, 'pending', 'submitted' FROM job) "
    "SELECT id FROM build"};

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

const Statement kSetPhases{
    "set_phases",
    "WITH moved AS (UPDATE jobs SET state = $4, updated_at = now() "
    "WHERE id = $1 AND attempt = $2 AND agent_id = $3 "
    "AND state IN " +
        JobStateSqlList(kHeldJobStates) +
        " RETURNING id), "
        "event AS (INSERT INTO job_events (job_id, attempt, state, agent_id, detail) "
        "SELECT moved.id, $2, e.state, $3, '' FROM moved, "
        "unnest($5::text[]) WITH ORDINALITY AS e(state, n) ORDER BY e.n) "
        "SELECT count(*) FROM moved"};

// The statement sees the other jobs as they were before it, and this job is the one it
// changes, hence "id <> $1".
const Statement kRecordSuccess{
    "record_success",
    "WITH done AS (UPDATE jobs SET state = 'succeeded', manifest_digest = $4, "
    "manifest_media_type = $5, manifest_size = $6, updated_at = now(), deadline = NULL "
    "WHERE id = $1 AND attempt = $2 AND agent_id = $3 "
    "AND state IN " +
        JobStateSqlList(kHeldJobStates) +
        " RETURNING build_id), "
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
  b.spec.network = row[26].as<std::string>();
  b.spec.entitlements = json::parse(row[27].as<std::string>()).get<std::vector<std::string>>();
  b.spec.limits = {row[28].as<uint64_t>(), row[29].as<uint64_t>(), row[30].as<uint64_t>(),
                   row[31].as<uint64_t>()};
  b.spec.cache_from = json::parse(row[32].as<std::string>()).get<std::vector<std::string>>();
  b.spec.cache_to = row[33].as<std::string>();
  b.spec.cache_mode = row[34].as<std::string>();
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
  j.retries = row[13].as<uint32_t>();
  return j;
}

std::optional<BuildRecord> LoadBuild(pqxx::transaction_base& tx, uint64_t id) {
  pqxx::result rows = tx.exec_prepared(kBuildById.name, id);
  if (rows.empty()) return std::nullopt;
  BuildRecord build = ReadBuild(rows[0]);
  for (const auto& job : tx.exec_prepared(kJobsOfBuild.name, id))
    build.jobs.push_back(ReadJob(job));
  return build;
}

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

void NotifyWork(pqxx::transaction_base& tx, const std::string& origin, const char* what,
                uint64_t build_id) {
  tx.exec_params("SELECT pg_notify($1, $2)", Store::kWorkChannel,
                 std::string(what) + " " + std::to_string(build_id) + " " + origin);
}

}  // namespace manifold::store_internal
