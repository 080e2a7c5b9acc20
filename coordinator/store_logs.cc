// Build output in the PostgreSQL store: appending an agent's chunks (fenced like every
// message about a job) and reading them back (coordinator/store_retention.cc deletes them
// with their builds).
#include "coordinator/store.h"
#include "coordinator/store_pool.h"
#include "coordinator/store_rows.h"

namespace manifold {

Result<bool> Store::AppendLog(const JobRef& job, const std::string& agent_id, uint64_t chunk_seq,
                              const std::string& data) {
  return pool_->Write<bool>(
      "append log",
      [&](pqxx::work& tx) -> Result<bool> {
        pqxx::result owner = tx.exec_params(
            "SELECT build_id FROM jobs WHERE id = $1 AND agent_id = $2 AND attempt = $3",
            job.job_id, agent_id, job.attempt);
        if (owner.empty()) return false;
        tx.exec_params(
            "INSERT INTO log_chunks (build_id, job_id, attempt, chunk_seq, data) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job_id, attempt, chunk_seq) DO NOTHING",
            owner[0][0].as<uint64_t>(), job.job_id, job.attempt, chunk_seq,
            pqxx::binarystring(data.data(), data.size()));
        return true;
      },
      Pool::Flush::kNoFlushWait);
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

}  // namespace manifold
