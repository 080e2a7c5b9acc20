#include "coordinator/store.h"

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "coordinator/database_url.h"
#include "coordinator/job_rules.h"
#include "coordinator/store_pool.h"
#include "coordinator/store_rows.h"
#include "schema/migrations.h"

namespace manifold {
namespace {

using nlohmann::json;
using namespace store_internal;

std::string PlatformsJson(const std::vector<Platform>& platforms) {
  json list = json::array();
  for (const Platform& p : platforms) list.push_back(p.ToString());
  return list.dump();
}

}  // namespace

Store::Store(std::unique_ptr<Pool> pool) : pool_(std::move(pool)) {}
Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::Open(const std::string& url, int pool_size,
                                           std::chrono::milliseconds read_back_wait) {
  auto pool = std::make_unique<Pool>(WithConnectionDeadlines(url), pool_size, read_back_wait);
  Status status = pool->Check();
  if (!status.ok()) return status;
  return std::unique_ptr<Store>(new Store(std::move(pool)));
}

uint64_t Store::unknown_outcomes() const { return pool_->unknown_outcomes(); }

void Store::FenceWrites(int64_t epoch, std::function<void(const std::string& why)> on_fenced) {
  pool_->SetFence(epoch, std::move(on_fenced));
}

Status Store::Migrate() {
  for (const Migration& migration : kMigrations) {
    Result<bool> applied =
        pool_->Write<bool>("migration " + migration.name, [&](pqxx::work& tx) -> Result<bool> {
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
  return pool_->Write<Created>("create build", [&](pqxx::work& tx) -> Result<Created> {
    json tags = spec.tags;
    json build_args = spec.build_args;
    json labels = spec.labels;
    json manifest_annotations = spec.manifest_annotations;
    json index_annotations = spec.index_annotations;
    json secret_ids = spec.secret_ids;
    json entitlements = spec.entitlements;
    json cache_from = spec.cache_from;
    pqxx::result inserted = tx.exec_prepared(
        kCreateBuild.name, idempotency_key, PlatformsJson(spec.platforms), tags.dump(),
        spec.context_digest, spec.dockerfile, spec.dockerfile_path, build_args.dump(), spec.target,
        spec.job_timeout_s, std::string(EmulationPolicyName(spec.emulation)), labels.dump(),
        spec.no_cache, spec.pull, manifest_annotations.dump(), index_annotations.dump(),
        spec.source, spec.revision, secret_ids.dump(), spec.network, entitlements.dump(),
        spec.limits.memory_bytes, spec.limits.cpu_millis, spec.limits.pids, spec.limits.disk_bytes,
        cache_from.dump(), spec.cache_to, spec.cache_mode);
    if (inserted.empty()) {
      auto existing = LoadBuilds(tx, "WHERE idempotency_key = $1", idempotency_key);
      if (existing.empty()) return Status::Internal("idempotency key vanished during submit");
      return Created{existing[0], false};
    }
    uint64_t id = inserted[0][0].as<uint64_t>();
    std::optional<BuildRecord> build = LoadBuild(tx, id);
    if (!build) return Status::Internal("build " + std::to_string(id) + " vanished during submit");
    if (announcing_) NotifyWork(tx, origin_, "build", id);
    return Created{*build, true};
  });
}

Result<std::string> Store::ContextGrantKey(const std::string& fresh) {
  return pool_->Write<std::string>("context grant key", [&](pqxx::work& tx) -> Result<std::string> {
    tx.exec_params(
        "INSERT INTO context_grant_key (id, key) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
        fresh);
    return tx.exec1("SELECT key FROM context_grant_key WHERE id = 1")[0].as<std::string>();
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

Result<std::vector<QueuedJob>> Store::PendingJobs() { return LoadPendingJobs(""); }

Result<std::vector<QueuedJob>> Store::PendingJobsOf(const std::vector<uint64_t>& build_ids) {
  if (build_ids.empty()) return std::vector<QueuedJob>{};
  std::string ids;
  for (uint64_t id : build_ids) ids += (ids.empty() ? "" : ",") + std::to_string(id);
  return LoadPendingJobs(ids);
}

Result<std::vector<QueuedJob>> Store::LoadPendingJobs(const std::string& build_ids) {
  using Jobs = std::vector<QueuedJob>;
  // Digits and commas only (PendingJobsOf), so it can go into the statement as it is.
  const std::string of_builds = build_ids.empty() ? "" : " AND build_id IN (" + build_ids + ")";
  return pool_->Run<Jobs>("load pending jobs", [&](pqxx::connection& c) -> Result<Jobs> {
    pqxx::read_transaction tx(c);
    std::map<uint64_t, std::shared_ptr<const BuildSpec>> specs;
    for (const BuildRecord& b :
         LoadBuilds(tx, "WHERE state IN ('queued', 'running')" +
                            (build_ids.empty() ? "" : " AND id IN (" + build_ids + ")"))) {
      specs[b.id] = std::make_shared<const BuildSpec>(b.spec);
    }
    Jobs jobs;
    for (const auto& row : tx.exec("SELECT " + kJobColumns + " FROM jobs WHERE state = 'pending'" +
                                   of_builds + " ORDER BY id")) {
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
    for (const auto& row : tx.exec("SELECT " + kJobColumns + " FROM jobs WHERE state IN " +
                                   JobStateSqlList(kHeldJobStates) + " ORDER BY id")) {
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

Result<std::set<std::string>> Store::ContextsOfUnfinishedBuilds() {
  using Digests = std::set<std::string>;
  return pool_->Run<Digests>("list contexts in use", [&](pqxx::connection& c) -> Result<Digests> {
    pqxx::read_transaction tx(c);
    Digests digests;
    for (const auto& row : tx.exec("SELECT DISTINCT context_digest FROM builds "
                                   "WHERE state IN ('queued', 'running')")) {
      digests.insert(row[0].as<std::string>());
    }
    return digests;
  });
}

Result<double> Store::CompleteBuild(uint64_t build_id, const std::string& index_digest,
                                    const std::string& index_media_type) {
  return pool_->Write<double>("complete build", [&](pqxx::work& tx) -> Result<double> {
    pqxx::result done = tx.exec_params(
        "UPDATE builds SET state = 'succeeded', index_digest = $2, index_media_type = $3, "
        "updated_at = now(), finished_at = now() WHERE id = $1 AND state = 'merging' "
        "RETURNING extract(epoch FROM now() - created_at)::float8",
        build_id, index_digest, index_media_type);
    return done.empty() ? 0.0 : done[0][0].as<double>();
  });
}

Status Store::FailBuild(uint64_t build_id, const std::string& error) {
  return pool_
      ->Write<bool>("fail build",
                    [&](pqxx::work& tx) -> Result<bool> {
                      tx.exec_params(
                          "UPDATE builds SET state = 'failed', error = $2, updated_at = now(), "
                          "finished_at = now() WHERE id = $1 "
                          "AND state IN ('queued', 'running', 'merging')",
                          build_id, error);
                      return true;
                    })
      .status();
}

}  // namespace manifold
