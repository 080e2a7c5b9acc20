// API tokens in the PostgreSQL store (coordinator/api_auth.h): only their hashes.
#include "coordinator/store.h"
#include "coordinator/store_pool.h"
#include "coordinator/store_rows.h"

namespace manifold {

using store_internal::Rfc3339;

Status Store::CreateApiToken(const std::string& name, const std::string& id,
                             const std::string& hash) {
  Result<bool> created =
      pool_->Write<bool>("create API token", [&](pqxx::work& tx) -> Result<bool> {
        pqxx::result r = tx.exec_params(
            "INSERT INTO api_tokens (id, name, token_hash) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING RETURNING id",
            id, name, hash);
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
      pool_->Write<bool>("revoke API token", [&](pqxx::work& tx) -> Result<bool> {
        pqxx::result r = tx.exec_params(
            "UPDATE api_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL "
            "RETURNING id",
            name);
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
