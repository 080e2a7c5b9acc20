#include "coordinator/leadership.h"

#include <spdlog/spdlog.h>

#include <pqxx/pqxx>

#include "coordinator/database_url.h"
#include "coordinator/leader_lease.h"

namespace manifold {
namespace {

using Clock = std::chrono::steady_clock;

int64_t Nanos(Clock::time_point at) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count();
}

}  // namespace

Leadership::Leadership(LeadershipOptions options) : options_(std::move(options)) {}

Leadership::~Leadership() { Release(); }

Result<int64_t> Leadership::Await(const std::function<bool()>& stop) {
  std::unique_ptr<pqxx::connection> connection;
  std::string last_holder;
  while (!stop()) {
    const Clock::time_point sent = Clock::now();
    try {
      if (!connection) {
        connection =
            std::make_unique<pqxx::connection>(WithConnectionDeadlines(options_.database_url));
      }
      LeaseHolder seen;
      Result<std::optional<int64_t>> taken =
          TryAcquireLease(*connection, options_.holder, options_.api_url, options_.lease, &seen);
      if (taken.ok() && taken->has_value()) {
        epoch_ = **taken;
        deadline_ns_ = Nanos(sent + options_.lease);
        spdlog::info("leading (epoch {}): this coordinator runs the agent loop", epoch_.load());
        Changed(true);
        thread_ = std::thread([this] { Renew(); });
        return epoch_.load();
      }
      {
        std::lock_guard lock(mutex_);
        leader_url_ = seen.remaining.count() > 0 ? seen.api_url : "";
      }
      if (seen.holder != last_holder) {
        spdlog::info("standby: {} leads (epoch {}), its lease runs {} ms more", seen.holder,
                     seen.epoch, seen.remaining.count());
        last_holder = seen.holder;
      }
    } catch (const std::exception& e) {
      connection.reset();
      spdlog::warn("standby: cannot read the leader lease: {}", e.what());
    }
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, options_.lease / 5, [&] { return stopping_; });
  }
  return Status::Canceled("stopped while waiting for the leader lease");
}

std::string Leadership::leader_url() const {
  std::lock_guard lock(mutex_);
  return leader_url_;
}

bool Leadership::leading() const {
  return !lost_ && epoch_ != 0 && Nanos(Clock::now()) < deadline_ns_;
}

void Leadership::Renew() {
  std::unique_ptr<pqxx::connection> connection;
  bool lapsed = false;
  while (true) {
    {
      // A lapsed lease is retried sooner: the loop is paused until it is renewed.
      std::unique_lock lock(mutex_);
      if (wake_.wait_for(lock, options_.lease / (lapsed ? 6 : 3), [&] { return stopping_; })) {
        return;
      }
    }
    const Clock::time_point sent = Clock::now();
    if (!lapsed && Nanos(sent) >= deadline_ns_) {
      lapsed = true;
      Changed(false);
      spdlog::warn(
          "leader lease (epoch {}) not renewed in time (paused, or the database out of "
          "reach): scheduling and index pushes wait until it is renewed",
          epoch_.load());
    }
    try {
      if (!connection) {
        connection =
            std::make_unique<pqxx::connection>(WithConnectionDeadlines(options_.database_url));
      }
      Result<bool> renewed = RenewLease(*connection, options_.holder, epoch_, options_.lease);
      if (renewed.ok() && *renewed) {
        deadline_ns_ = Nanos(sent + options_.lease);
        if (lapsed) {
          spdlog::info("leader lease renewed (epoch {}): leading again", epoch_.load());
          Changed(true);
        }
        lapsed = false;
        continue;
      }
      break;  // a new epoch: another coordinator took the lease over
    } catch (const std::exception& e) {
      connection.reset();
      spdlog::warn("cannot renew the leader lease: {}", e.what());
    }
  }
  lost_ = true;
  Changed(false);
  const std::string why = "another coordinator took the leader lease over";
  spdlog::critical("leadership lost (epoch {}): {}", epoch_.load(), why);
  if (options_.on_lost) options_.on_lost(why);
}

void Leadership::Changed(bool leading) {
  if (options_.on_change) options_.on_change(leading, epoch_);
}

void Leadership::Release() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  const bool was_leading = leading();
  lost_ = true;  // no renewals from here on
  if (!was_leading) return;
  Changed(false);
  try {
    pqxx::connection connection(WithConnectionDeadlines(options_.database_url));
    (void)ReleaseLease(connection, options_.holder, epoch_);
    spdlog::info("released the leader lease (epoch {})", epoch_.load());
  } catch (const std::exception& e) {
    spdlog::warn("cannot release the leader lease, a standby waits for it to expire: {}", e.what());
  }
}

}  // namespace manifold
