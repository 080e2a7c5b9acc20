// Internal to the PostgreSQL store (coordinator/store*.cc): Store::Pool, the store's
// bounded set of connections.
//
// Run() lends a connection to a function and turns libpqxx's exceptions into Status
// values; a connection that broke is not returned to the pool. Thread-safe: callers on any
// thread wait for a connection while all are lent out.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "common/status.h"
#include "coordinator/store.h"

namespace manifold {

class Store::Pool {
 public:
  Pool(std::string url, int size) : url_(std::move(url)), size_(size) {}

  // A connection that sat idle through a database restart is dead; the first statement
  // finds out. Nothing was applied then, so the call is tried once more on a fresh one.
  template <typename T, typename F>
  Result<T> Run(const std::string& what, F&& f) {
    for (int attempt = 1;; ++attempt) {
      std::unique_ptr<pqxx::connection> connection;
      try {
        connection = Acquire();
        Result<T> result = f(*connection);
        Release(std::move(connection));
        return result;
      } catch (const pqxx::broken_connection& e) {
        if (connection) Discard();  // a failed Acquire has accounted for itself
        if (attempt < 2) continue;
        return Status::Unavailable("database unavailable during " + what + ": " + Trim(e.what()));
      } catch (const pqxx::sql_error& e) {
        Return(std::move(connection));
        return Status::Internal("database error during " + what + ": " + Trim(e.what()));
      } catch (const std::exception& e) {
        Return(std::move(connection));
        return Status::Unavailable("database failure during " + what + ": " + Trim(e.what()));
      }
    }
  }

  Status Check();

 private:
  static std::string Trim(std::string text);
  // A connection with the store's statements prepared on it.
  std::unique_ptr<pqxx::connection> Acquire();
  void Release(std::unique_ptr<pqxx::connection> connection);
  // After an error: keep the connection if it still works, otherwise let it go.
  void Return(std::unique_ptr<pqxx::connection> connection);
  void Discard();

  const std::string url_;
  const int size_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  int open_ = 0;  // connections lent out or idle
};

}  // namespace manifold
