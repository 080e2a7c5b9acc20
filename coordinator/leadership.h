// Leadership: one coordinator's side of the leader lease (coordinator/leader_lease.h).
//
// Await() blocks until this coordinator holds the lease (a standby waits here, saying who
// leads and until when); from then on a thread of its own renews it every third of its
// duration on a connection of its own. The leader must stop acting before the lease can
// expire in the database: it counts the lease from the moment it sent the renewal, on the
// steady clock (which runs on while the process is paused), and once that deadline passes
// without a renewal it calls on_lost, at once, even if the database never answered. The
// fence (FenceLease on every leader-only write) covers what that local deadline cannot: a
// write already under way when the process was paused. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"

namespace manifold {

struct LeadershipOptions {
  std::string database_url;
  std::string holder;  // this coordinator's name in the lease: unique per process
  std::chrono::milliseconds lease{10000};
  // Called once, from the renewal thread, when leadership is lost or may have been.
  std::function<void(const std::string& why)> on_lost;
};

class Leadership {
 public:
  explicit Leadership(LeadershipOptions options);
  ~Leadership();

  // Waits until the lease is this coordinator's or `stop` says to give up (asked between
  // attempts); the epoch, or Canceled.
  Result<int64_t> Await(const std::function<bool()>& stop);
  // Whether this coordinator still leads by its own clock.
  bool leading() const;
  int64_t epoch() const { return epoch_; }
  // Ends the renewals and, if still leading, releases the lease for a standby.
  void Release();

 private:
  void Renew();

  const LeadershipOptions options_;
  std::atomic<int64_t> epoch_{0};
  // Steady-clock deadline (ns since its epoch) past which this coordinator must not act.
  std::atomic<int64_t> deadline_ns_{0};
  std::atomic<bool> lost_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace manifold
