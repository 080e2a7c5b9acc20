#include "coordinator/store_pool.h"

#include <chrono>
#include <thread>

#include "coordinator/store_rows.h"

namespace manifold {

Status Store::Pool::Check() {
  Result<bool> r = Run<bool>("connect", [](pqxx::connection&) -> Result<bool> { return true; });
  return r.status();
}

std::string Store::Pool::Trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

void Store::Pool::Commit(pqxx::work& tx, Flush flush) {
  // The transaction's id, read before its COMMIT, is how its outcome is asked for later;
  // a transaction that wrote nothing has none, and nothing to be in doubt about.
  pqxx::row id = tx.exec1(flush == Flush::kWait ? "SELECT txid_current_if_assigned()"
                                                : "SELECT txid_current_if_assigned(), "
                                                  "set_config('synchronous_commit', 'off', true)");
  try {
    tx.commit();
  } catch (const pqxx::in_doubt_error&) {
    if (id[0].is_null()) return;
    switch (Resolve(id[0].as<int64_t>())) {
      case Fate::kCommitted:
        return;
      case Fate::kAborted:
        throw pqxx::broken_connection("the connection broke before the transaction committed");
      case Fate::kUnknown:
        throw;
    }
  }
}

Store::Pool::Fate Store::Pool::Resolve(int64_t xid) {
  // A database that restarts and a session that is still finishing the COMMIT ("in
  // progress") are waited out for a few seconds. The probe is a connection outside the
  // pool's count, which still counts the broken one it stands in for.
  const auto give_up = std::chrono::steady_clock::now() + read_back_wait_;
  while (true) {
    try {
      pqxx::connection probe(url_);
      pqxx::nontransaction tx(probe);
      pqxx::row fate = tx.exec_params1("SELECT txid_status($1)", xid);
      if (fate[0].is_null()) return Fate::kUnknown;  // too old to be known any more
      const std::string status = fate[0].as<std::string>();
      if (status == "committed") return Fate::kCommitted;
      if (status == "aborted") return Fate::kAborted;
    } catch (const std::exception&) {
      // not reachable yet
    }
    if (std::chrono::steady_clock::now() > give_up) return Fate::kUnknown;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::unique_ptr<pqxx::connection> Store::Pool::Acquire() {
  {
    std::unique_lock lock(mutex_);
    available_.wait(lock, [&] { return !idle_.empty() || open_ < size_; });
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
    ++open_;
  }
  try {
    auto connection = std::make_unique<pqxx::connection>(url_);
    // A transaction left open by a process that stopped (paused past its leader lease, or
    // hung) would hold its locks, the lease row's fence among them, and so block a standby's
    // takeover for as long as it stays stopped; the server ends it instead. No transaction
    // here waits on anything but the database between its statements.
    pqxx::nontransaction(*connection)
        .exec("SET idle_in_transaction_session_timeout = " +
              std::to_string(kIdleTransactionLimitMs));
    for (const store_internal::Statement* statement : store_internal::kPrepared) {
      connection->prepare(statement->name, statement->sql);
    }
    return connection;
  } catch (...) {
    Discard();
    throw;
  }
}

void Store::Pool::Release(std::unique_ptr<pqxx::connection> connection) {
  std::lock_guard lock(mutex_);
  idle_.push_back(std::move(connection));
  available_.notify_one();
}

void Store::Pool::Return(std::unique_ptr<pqxx::connection> connection) {
  if (!connection) return;  // Acquire itself failed and already accounted for it
  if (connection->is_open()) {
    Release(std::move(connection));
  } else {
    Discard();
  }
}

void Store::Pool::Discard() {
  std::lock_guard lock(mutex_);
  --open_;
  available_.notify_one();
}

}  // namespace manifold
