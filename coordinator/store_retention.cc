// Retention in the PostgreSQL store: finished builds deleted with their jobs, events and
// logs once they are older than the retention, a batch per transaction; agents gone as
// long; and the counts of builds by state for the gauges.
#include "coordinator/store.h"
#include "coordinator/store_pool.h"

namespace manifold {

Result<std::map<std::string, int>> Store::PruneBuilds(std::chrono::seconds keep, int max_builds) {
  using Counts = std::map<std::string, int>;
  return pool_->Write<Counts>(
      "delete builds past the retention", [&](pqxx::work& tx) -> Result<Counts> {
        // Locked rows are skipped: a build someone holds goes with a later batch. The
        // children go first (their foreign keys name the builds), each through its index.
        pqxx::result doomed = tx.exec_params(
            "SELECT id, state FROM builds WHERE finished_at IS NOT NULL "
            "AND finished_at < now() - make_interval(secs => $1) "
            "ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            static_cast<int64_t>(keep.count()), max_builds);
        Counts deleted;
        if (doomed.empty()) return deleted;
        std::string ids = "{";
        for (const auto& row : doomed) {
          if (ids.size() > 1) ids += ',';
          ids += row[0].c_str();
          ++deleted[row[1].as<std::string>()];
        }
        ids += '}';
        tx.exec_params("DELETE FROM log_chunks WHERE build_id = ANY($1::bigint[])", ids);
        tx.exec_params(
            "DELETE FROM job_events WHERE job_id IN "
            "(SELECT id FROM jobs WHERE build_id = ANY($1::bigint[]))",
            ids);
        tx.exec_params("DELETE FROM jobs WHERE build_id = ANY($1::bigint[])", ids);
        tx.exec_params("DELETE FROM builds WHERE id = ANY($1::bigint[])", ids);
        return deleted;
      });
}

Result<int> Store::PruneAgents(std::chrono::seconds keep,
                               const std::vector<std::string>& connected) {
  std::string ids = "{";
  for (const std::string& id : connected) {
    if (ids.size() > 1) ids += ',';
    ids += '"';
    for (char c : id) {
      if (c == '"' || c == '\\') ids += '\\';
      ids += c;
    }
    ids += '"';
  }
  ids += '}';
  return pool_->Write<int>("delete agents past the retention", [&](pqxx::work& tx) -> Result<int> {
    pqxx::result deleted = tx.exec_params(
        "DELETE FROM agents a WHERE last_seen < now() - make_interval(secs => $1) "
        "AND a.id <> ALL($2::text[]) AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.agent_id = a.id)",
        static_cast<int64_t>(keep.count()), ids);
    return static_cast<int>(deleted.affected_rows());
  });
}

Result<std::map<std::string, int>> Store::CountBuilds(bool finished) {
  using Counts = std::map<std::string, int>;
  return pool_->Run<Counts>("count builds", [&](pqxx::connection& c) -> Result<Counts> {
    pqxx::read_transaction tx(c);
    Counts counts;
    // The unfinished states are those of the partial index builds_unfinished.
    const char* query = finished
                            ? "SELECT state, count(*) FROM builds WHERE finished_at IS NOT NULL "
                              "GROUP BY state"
                            : "SELECT state, count(*) FROM builds "
                              "WHERE state IN ('queued', 'running', 'merging') GROUP BY state";
    for (const auto& row : tx.exec(query)) counts[row[0].as<std::string>()] = row[1].as<int>();
    return counts;
  });
}

Result<bool> Store::BuildIdIssued(uint64_t id) {
  return pool_->Run<bool>("read the build id sequence", [&](pqxx::connection& c) -> Result<bool> {
    pqxx::read_transaction tx(c);
    pqxx::result seq = tx.exec_params(
        "SELECT $1 <= CASE WHEN is_called THEN last_value ELSE 0 END FROM builds_id_seq", id);
    return seq[0][0].as<bool>();
  });
}

}  // namespace manifold
