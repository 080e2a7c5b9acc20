// Internal to the PostgreSQL store (coordinator/store*.cc): Store::Pool, the store's
// bounded set of connections.
//
// Run() lends a connection to a function and turns libpqxx's exceptions into Status
// values; a connection that broke is not returned to the pool. Write() runs a function
// in a transaction and commits it.
//
// A COMMIT whose answer is lost with its connection has an unknown outcome
// (pqxx::in_doubt_error). The pool resolves it by reading back the fate of the
// transaction's own id (txid_status) on a new connection, waiting a few seconds for a
// database that restarts: a committed write returns what the function computed, and one
// that did not commit is run again, as any call on a broken connection is. This is
// smaller than making every transition recognise its own earlier effect, and exact.
// Only if the database stays out of reach does the outcome stay unknown; Write() then
// answers Status::Unavailable saying so, never "nothing was written", and counts it
// (unknown_outcomes()), so the loop knows to read its view back from the database.
// Thread-safe: callers on any thread wait for a connection while all are lent out.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "common/status.h"
#include "coordinator/leader_lease.h"
#include "coordinator/store.h"

namespace manifold {

class Store::Pool {
 public:
  // `read_back_wait`: how long an unanswered COMMIT's fate is asked for.
  Pool(std::string url, int size, std::chrono::milliseconds read_back_wait)
      : url_(std::move(url)), size_(size), read_back_wait_(read_back_wait) {}

  // A connection that sat idle through a database restart is dead; the first statement
  // finds out. Nothing was applied then, so the call is tried once more on a fresh one.
  template <typename T, typename F>
  Result<T> Run(const std::string& what, F&& f) {
    for (int attempt = 1;; ++attempt) {
      std::unique_ptr<pqxx::connection> connection;
      try {
        connection = Acquire();
        Result<T> result = f(*connection);
        Return(std::move(connection));  // broken if its COMMIT went unanswered
        return result;
      } catch (const pqxx::broken_connection& e) {
        if (connection) Discard();  // a failed Acquire has accounted for itself
        if (attempt < 2) continue;
        return Status::Unavailable("database unavailable during " + what + ": " + Trim(e.what()));
      } catch (const pqxx::in_doubt_error&) {
        Discard();
        ++unknown_outcomes_;
        return Status::Unavailable("the connection to the database broke while committing " + what +
                                   " and the database cannot be reached: whether it " +
                                   "was recorded is unknown until the database answers again");
      } catch (const pqxx::sql_error& e) {
        Return(std::move(connection));
        return Status::Internal("database error during " + what + ": " + Trim(e.what()));
      } catch (const std::exception& e) {
        Return(std::move(connection));
        return Status::Unavailable("database failure during " + what + ": " + Trim(e.what()));
      }
    }
  }

  // How a write's commit waits. kNoFlushWait is for writes that a later durable write
  // supersedes (job phases, log chunks, agent registrations): PostgreSQL keeps the commit
  // atomic and in order, and any later ordinary commit (a job's result, an assignment)
  // flushes it too, so all a database crash can lose is the last fraction of a second of
  // such progress, which the next message restores; the loop thread no longer waits a
  // disk flush for each.
  enum class Flush { kWait, kNoFlushWait };

  // Runs f(pqxx::work&) -> Result<T> in a transaction, committed if f returns a value and
  // rolled back if it returns an error.
  template <typename T, typename F>
  Result<T> Write(const std::string& what, F&& f, Flush flush = Flush::kWait) {
    return Run<T>(what, [&](pqxx::connection& c) -> Result<T> {
      pqxx::work tx(c);
      if (const int64_t epoch = fence_epoch_; epoch != 0) {
        if (Status fenced = FenceLease(tx, epoch); !fenced.ok()) {
          if (on_fenced_) on_fenced_(fenced.message());
          return fenced;
        }
      }
      Result<T> result = f(tx);
      if (result.ok()) Commit(tx, flush);
      return result;
    });
  }

  Status Check();
  uint64_t unknown_outcomes() const { return unknown_outcomes_; }
  // The server ends a transaction of the pool's that waits longer than this between two
  // statements (PostgreSQL's idle_in_transaction_session_timeout), releasing its locks.
  static constexpr int kIdleTransactionLimitMs = 5000;
  // From here on every write first checks, in its own transaction, that leadership
  // `epoch` is still current (FenceLease), and fails without writing if not, after
  // calling on_fenced. Set once, before the writers start.
  void SetFence(int64_t epoch, std::function<void(const std::string& why)> on_fenced) {
    on_fenced_ = std::move(on_fenced);
    fence_epoch_ = epoch;
  }

 private:
  static std::string Trim(std::string text);
  // Commits; on an unanswered COMMIT, returns if the transaction committed, throws
  // pqxx::broken_connection if it did not (nothing was applied) and pqxx::in_doubt_error
  // if the database cannot tell.
  void Commit(pqxx::work& tx, Flush flush);
  enum class Fate { kCommitted, kAborted, kUnknown };
  Fate Resolve(int64_t xid);
  // A connection with the store's statements prepared on it.
  std::unique_ptr<pqxx::connection> Acquire();
  void Release(std::unique_ptr<pqxx::connection> connection);
  // After an error: keep the connection if it still works, otherwise let it go.
  void Return(std::unique_ptr<pqxx::connection> connection);
  void Discard();

  const std::string url_;
  const int size_;
  const std::chrono::milliseconds read_back_wait_;
  std::atomic<uint64_t> unknown_outcomes_{0};
  std::atomic<int64_t> fence_epoch_{0};
  std::function<void(const std::string& why)> on_fenced_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  int open_ = 0;  // connections lent out or idle
};

}  // namespace manifold
