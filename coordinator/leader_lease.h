// LeaderLease: which of several coordinators on one database runs the agent loop.
//
// Leadership is a lease, not a session lock: a row with a holder, an epoch and an expiry
// in the database's own clock (schema 012). A coordinator takes it when it is free,
// expired, or already its own, and the epoch grows each time it is taken; the holder
// renews it well within its duration. A bare advisory lock would not do: a paused leader
// keeps its TCP session, and with it the lock. Instead every write only the leader may
// make runs FenceLease() in its own transaction: it holds the lease row FOR SHARE for that
// transaction if the epoch is still current, so a takeover (an UPDATE of the row) waits
// for the write to commit, and once taken over, a deposed leader's writes are refused.
// The epoch, not the expiry, is the fence: an expired lease nobody took is still only
// its holder's, which lets a lone coordinator renew it and go on after a database outage.
//
// Plain functions over a connection the caller owns; thread-safe as that connection is.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <pqxx/pqxx>
#include <string>

#include "common/status.h"

namespace manifold {

struct LeaseHolder {
  std::string holder;   // "" when nobody ever held it
  std::string api_url;  // the holder's --public-url
  int64_t epoch = 0;
  // How long the lease still runs, in the database's clock (negative: expired).
  std::chrono::milliseconds remaining{0};
};

// Takes the lease for `holder` (whose API is at `api_url`) for `duration` if it is free,
// expired or `holder`'s own, with a new epoch; nothing if another holder has it. *current
// (may be null) gets the row as it is after the attempt.
Result<std::optional<int64_t>> TryAcquireLease(pqxx::connection& connection,
                                               const std::string& holder,
                                               const std::string& api_url,
                                               std::chrono::milliseconds duration,
                                               LeaseHolder* current);

// Extends `holder`'s lease of `epoch` to `duration` from now, even if it expired meanwhile;
// false if another coordinator has taken it since (a new epoch).
Result<bool> RenewLease(pqxx::connection& connection, const std::string& holder, int64_t epoch,
                        std::chrono::milliseconds duration);

// Ends `holder`'s lease of `epoch` now, so a standby takes over without waiting for it to
// expire (a clean shutdown).
Status ReleaseLease(pqxx::connection& connection, const std::string& holder, int64_t epoch);

// In a write transaction of the leader of `epoch`: FailedPrecondition if that epoch is no
// longer current; else holds the lease row until the transaction ends.
Status FenceLease(pqxx::work& tx, int64_t epoch);

}  // namespace manifold
