#include "coordinator/leader_lease.h"

namespace manifold {
namespace {

std::string Interval(std::chrono::milliseconds duration) {
  return std::to_string(duration.count()) + " milliseconds";
}

}  // namespace

Result<std::optional<int64_t>> TryAcquireLease(pqxx::connection& connection,
                                               const std::string& holder,
                                               const std::string& api_url,
                                               std::chrono::milliseconds duration,
                                               LeaseHolder* current) {
  pqxx::work tx(connection);
  pqxx::result taken = tx.exec_params(
      "UPDATE leader_lease SET holder = $1, api_url = $2, epoch = epoch + 1, "
      "expires_at = now() + $3::interval "
      "WHERE id = 1 AND (expires_at <= now() OR holder = $1) RETURNING epoch",
      holder, api_url, Interval(duration));
  pqxx::row row = tx.exec1(
      "SELECT holder, api_url, epoch, (extract(epoch FROM expires_at - now()) * 1000)::bigint "
      "FROM leader_lease WHERE id = 1");
  tx.commit();
  if (current != nullptr) {
    current->holder = row[0].as<std::string>();
    current->api_url = row[1].as<std::string>();
    current->epoch = row[2].as<int64_t>();
    // -infinity (never held) reads as NULL.
    current->remaining = std::chrono::milliseconds(row[3].is_null() ? 0 : row[3].as<int64_t>());
  }
  if (taken.empty()) return std::optional<int64_t>();
  return std::optional<int64_t>(taken[0][0].as<int64_t>());
}

Result<bool> RenewLease(pqxx::connection& connection, const std::string& holder, int64_t epoch,
                        std::chrono::milliseconds duration) {
  pqxx::work tx(connection);
  pqxx::result renewed = tx.exec_params(
      "UPDATE leader_lease SET expires_at = now() + $3::interval "
      "WHERE id = 1 AND holder = $1 AND epoch = $2 RETURNING epoch",
      holder, epoch, Interval(duration));
  tx.commit();
  return !renewed.empty();
}

Status ReleaseLease(pqxx::connection& connection, const std::string& holder, int64_t epoch) {
  pqxx::work tx(connection);
  tx.exec_params(
      "UPDATE leader_lease SET expires_at = now() WHERE id = 1 AND holder = $1 AND epoch = $2",
      holder, epoch);
  tx.commit();
  return Status::Ok();
}

Status FenceLease(pqxx::work& tx, int64_t epoch) {
  pqxx::result held =
      tx.exec_params("SELECT 1 FROM leader_lease WHERE id = 1 AND epoch = $1 FOR SHARE", epoch);
  if (held.empty()) {
    return Status::FailedPrecondition("this coordinator's leadership (epoch " +
                                      std::to_string(epoch) +
                                      ") was taken over by another coordinator; it must step down");
  }
  return Status::Ok();
}

}  // namespace manifold
