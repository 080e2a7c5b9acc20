// Build output in the PostgreSQL store: appending an agent's chunks (fenced like every
// message about a job) and reading them back (coordinator/store_retention.cc deletes them
// with their builds).
#include "coordinator/store.h"
#include "coordinator/store_pool.h"
#include "coordinator/store_rows.h"

namespace manifold {

Result<LogAppend> Store::AppendLog(const JobRef& job, const std::string& agent_id,
                                   uint64_t chunk_seq, const std::string& data, const LogCap& cap) {
  return pool_->Write<LogAppend>(
      "append log",
      [&](pqxx::work& tx) -> Result<LogAppend> {
        // Locks the job's row: its counts change with every chunk.
        pqxx::result owner = tx.exec_params(
            "SELECT build_id, log_attempt, log_chunk_seq, log_head_bytes, "
            "log_head_seq IS NOT NULL, COALESCE(log_head_seq, 0), log_tail_bytes FROM jobs "
            "WHERE id = $1 AND agent_id = $2 AND attempt = $3 FOR UPDATE",
            job.job_id, agent_id, job.attempt);
        if (owner.empty()) return LogAppend{};
        const pqxx::row& row = owner[0];
        // A replay of a chunk stored before, perhaps cut since: storing it again would put
        // old output after newer.
        if (row[1].as<uint32_t>() == job.attempt && chunk_seq <= row[2].as<uint64_t>()) {
          return LogAppend{true, 0};
        }
        pqxx::result inserted = tx.exec_params(
            "INSERT INTO log_chunks (build_id, job_id, attempt, chunk_seq, data) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job_id, attempt, chunk_seq) DO NOTHING "
            "RETURNING seq",
            row[0].as<uint64_t>(), job.job_id, job.attempt, chunk_seq,
            pqxx::binarystring(data.data(), data.size()));
        if (inserted.empty()) return LogAppend{true, 0};
        JobLogSpan span{row[3].as<uint64_t>(), row[4].as<bool>(), row[6].as<uint64_t>()};
        int64_t head_seq = row[5].as<int64_t>();
        if (AddToHead(cap, span, data.size()) && span.head_full) {
          head_seq = inserted[0][0].as<int64_t>();
        }
        uint64_t cut = 0;
        int64_t seam_seq = 0;  // unchanged
        if (TailDueForCut(cap, span)) {
          pqxx::result tail = tx.exec_params(
              "SELECT seq, octet_length(data) FROM log_chunks WHERE job_id = $1 AND seq > $2 "
              "ORDER BY seq",
              job.job_id, head_seq);
          std::vector<uint64_t> sizes;
          for (const auto& chunk : tail) sizes.push_back(chunk[1].as<uint64_t>());
          size_t count = ChunksToCut(cap, sizes);
          if (count > 0) {
            for (size_t i = 0; i < count; ++i) cut += sizes[i];
            tx.exec_params("DELETE FROM log_chunks WHERE job_id = $1 AND seq > $2 AND seq <= $3",
                           job.job_id, head_seq, tail[count - 1][0].as<int64_t>());
            seam_seq = tail[count][0].as<int64_t>();
            span.tail_bytes -= cut;
          }
        }
        tx.exec_params(
            "UPDATE jobs SET log_attempt = $2, log_chunk_seq = $3, log_head_bytes = $4, "
            "log_head_seq = NULLIF($5, 0), log_tail_bytes = $6, "
            "log_cut_bytes = log_cut_bytes + $7, "
            "log_seam_seq = COALESCE(NULLIF($8, 0), log_seam_seq) WHERE id = $1",
            job.job_id, job.attempt, chunk_seq, span.head_bytes, head_seq, span.tail_bytes, cut,
            seam_seq);
        return LogAppend{true, cut};
      },
      Pool::Flush::kNoFlushWait);
}

Result<std::vector<LogChunkRecord>> Store::ListLogs(uint64_t build_id, int64_t after, int limit) {
  using Chunks = std::vector<LogChunkRecord>;
  return pool_->Run<Chunks>("list logs", [&](pqxx::connection& c) -> Result<Chunks> {
    pqxx::read_transaction tx(c);
    Chunks chunks;
    for (const auto& row :
         tx.exec_params("SELECT l.seq, j.platform, l.attempt, l.data, "
                        "CASE WHEN l.seq = j.log_seam_seq THEN j.log_cut_bytes ELSE 0 END "
                        "FROM log_chunks l JOIN jobs j ON j.id = l.job_id "
                        "WHERE l.build_id = $1 AND l.seq > $2 ORDER BY l.seq LIMIT $3",
                        build_id, after, limit)) {
      pqxx::binarystring data(row[3]);
      chunks.push_back({row[0].as<int64_t>(), row[1].as<std::string>(), row[2].as<uint32_t>(),
                        data.str(), row[4].as<uint64_t>()});
    }
    return chunks;
  });
}

}  // namespace manifold
