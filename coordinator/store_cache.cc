// Registry cache pushes in the PostgreSQL store: the latest per image repository and
// platform (registry_cache_pushes, one row per pair, replaced on every push).
#include "coordinator/store.h"
#include "coordinator/store_pool.h"
#include "coordinator/store_rows.h"

namespace manifold {

Status Store::RecordCachePush(const std::string& repository, const Platform& platform,
                              const std::string& cache_ref) {
  return pool_
      ->Write<bool>(
          "record cache push",
          [&](pqxx::work& tx) -> Result<bool> {
            tx.exec_params(
                "INSERT INTO registry_cache_pushes (repository, platform, cache_ref, pushed_at) "
                "VALUES ($1, $2, $3, now()) ON CONFLICT (repository, platform) DO UPDATE SET "
                "cache_ref = $3, pushed_at = now()",
                repository, platform.ToString(), cache_ref);
            return true;
          },
          Pool::Flush::kNoFlushWait)
      .status();
}

Result<std::vector<CachePush>> Store::CachePushes() {
  return pool_->Run<std::vector<CachePush>>(
      "read cache pushes", [](pqxx::connection& c) -> Result<std::vector<CachePush>> {
        pqxx::read_transaction tx(c);
        std::vector<CachePush> pushes;
        for (const pqxx::row& row : tx.exec("SELECT repository, platform, cache_ref, "
                                            "(extract(epoch FROM pushed_at) * 1000)::bigint "
                                            "FROM registry_cache_pushes")) {
          Result<Platform> platform = ParsePlatform(row[1].as<std::string>());
          if (!platform.ok()) continue;  // written by RecordCachePush from a valid one
          pushes.push_back({row[0].as<std::string>(), *platform, row[2].as<std::string>(),
                            row[3].as<int64_t>()});
        }
        return pushes;
      });
}

}  // namespace manifold
