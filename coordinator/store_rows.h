// Internal to the PostgreSQL store (coordinator/store*.cc); nothing else includes it.
//
// What the store's files share: the column lists and readers that turn rows into the
// domain's records, the statements every connection prepares, and the small steps many
// transactions take (loading a build, recording a job event). Each function works inside
// the caller's transaction; the constants are immutable, so all of it is safe to use from
// any thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "coordinator/build.h"

namespace manifold::store_internal {

// `column` (a timestamptz) as RFC 3339 in UTC.
std::string Rfc3339(const std::string& column);

// The columns ReadBuild and ReadJob read, in their order.
extern const std::string kBuildColumns;
extern const std::string kJobColumns;

BuildRecord ReadBuild(const pqxx::row& row);
JobRecord ReadJob(const pqxx::row& row);

// The statements of the hot path (a submit, a scheduling pass, a job's reports), prepared
// once per connection (on first use) so the server parses and plans each once.
struct Statement {
  const char* name;
  std::string sql;
};
// A build with one pending job per platform, in the build's order, each with its event;
// nothing when the idempotency key was seen before.
extern const Statement kCreateBuild;
// A scheduling pass, from a JSON list of assignments: the jobs still pending move to their
// agents, their builds start running, and each gets its event; returns (id, attempt).
extern const Statement kAssignJobs;
// The phases of (job $1, attempt $2, agent $3) that came together: the job takes the last
// one's state $4, and each state in $5 (in order) becomes an event; returns how many jobs
// moved (0: fenced).
extern const Statement kSetPhases;
// A succeeded result of (job $1, attempt $2, agent $3) with its image ($4 digest, $5 media
// type, $6 size): the job and its event, and the build, now merging, if every other job had
// succeeded. Returns nothing when fenced, else the merging build's columns (NULL when it is
// not merging) and the build's id.
extern const Statement kRecordSuccess;
extern const Statement kJobsOfBuild;
extern const Statement kBuildById;
// Every statement above, for each new connection to prepare.
inline const Statement* const kPrepared[] = {&kCreateBuild,   &kAssignJobs,  &kSetPhases,
                                             &kRecordSuccess, &kJobsOfBuild, &kBuildById};

// Loads builds (and their jobs) selected by `tail` ("WHERE ... ORDER BY ..."), which may
// use $1.
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
  nlohmann::json ids = nlohmann::json::array();
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
std::optional<BuildRecord> LoadBuild(pqxx::transaction_base& tx, uint64_t id);
// Adds each job's history to builds loaded by LoadBuilds.
void LoadEvents(pqxx::transaction_base& tx, std::vector<BuildRecord>& builds);

void RecordEvent(pqxx::transaction_base& tx, uint64_t job_id, uint32_t attempt,
                 const std::string& state, const std::string& agent_id, const std::string& detail);

// NOTIFY Store::kWorkChannel in `tx` (delivered on commit) that `origin` took `what`
// ("build" or "cancel") of build `build_id`: the payload is "WHAT BUILD_ID ORIGIN"
// (coordinator/work_listener.h).
void NotifyWork(pqxx::transaction_base& tx, const std::string& origin, const char* what,
                uint64_t build_id);

}  // namespace manifold::store_internal
