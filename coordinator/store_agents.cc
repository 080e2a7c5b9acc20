// Agents in the PostgreSQL store: their registrations (hello) and states.
#include <nlohmann/json.hpp>

#include "coordinator/store.h"
#include "coordinator/store_pool.h"
#include "coordinator/store_rows.h"

namespace manifold {

using nlohmann::json;

Status Store::UpsertAgent(const HelloMsg& hello) {
  json platforms = json::array();
  for (const PlatformOffer& offer : hello.platforms) {
    platforms.push_back({{"platform", offer.platform.ToString()}, {"emulated", offer.emulated}});
  }
  json labels = hello.labels;
  return pool_
      ->Write<bool>(
          "register agent",
          [&](pqxx::work& tx) -> Result<bool> {
            tx.exec_params(
                "INSERT INTO agents (id, hostname, platforms, slots, labels, version, "
                "state) VALUES ($1, $2, $3::jsonb, $4, $5::jsonb, $6, 'online') "
                "ON CONFLICT (id) DO UPDATE SET hostname = $2, platforms = $3::jsonb, "
                "slots = $4, labels = $5::jsonb, version = $6, state = 'online', "
                "last_seen = now()",
                hello.agent_id, hello.hostname, platforms.dump(), hello.slots, labels.dump(),
                hello.version);
            return true;
          },
          Pool::Flush::kNoFlushWait)
      .status();
}

Status Store::SetAgentState(const std::string& agent_id, const std::string& state) {
  return pool_
      ->Write<bool>(
          "update agent",
          [&](pqxx::work& tx) -> Result<bool> {
            tx.exec_params("UPDATE agents SET state = $2, last_seen = now() WHERE id = $1",
                           agent_id, state);
            return true;
          },
          Pool::Flush::kNoFlushWait)
      .status();
}

}  // namespace manifold
