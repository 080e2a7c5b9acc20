#include "coordinator/store_pool.h"

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
