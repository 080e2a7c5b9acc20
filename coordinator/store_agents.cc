// Agents in the PostgreSQL store: their registrations (hello) and states.
#include <nlohmann/json.hpp>

#include "coordinator/store.h"
#include "coordinator/store_pool.h"
#include "coordinator/store_rows.h"

namespace manifold {

using nlohmann::json;
using store_internal::CommitWithoutFlushWait;

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

}  // namespace manifold
