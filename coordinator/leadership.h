// Leadership: one coordinator's side of the leader lease (coordinator/leader_lease.h).
//
// Await() blocks until this coordinator holds the lease (a standby waits here, saying who
// leads and until when); from then on a thread of its own renews it every third of its
// duration on a connection of its own. The leader must stop acting before the lease can
// expire in the database: it counts the lease from the moment it sent the renewal, on the
// steady clock (which runs on while the process is paused), and leading() is false once
// that deadline passes without a renewal. That pauses only what the database cannot
// fence (scheduling, index pushes); renewal goes on, and once it succeeds the leader acts
// again, so a single coordinator rides out a database outage longer than its lease. A
// renewal refused because the epoch moved on means another coordinator took over: then
// on_lost is called. The fence (FenceLease on every leader-only write) covers the rest: a
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
  std::string holder;     // this coordinator's name in the lease: unique per process
  std::string api_url{};  // this coordinator's --public-url, for the others' APIs
  std::chrono::milliseconds lease{5000};
  // Called once, from the renewal thread, when another coordinator took the lease over.
  std::function<void(const std::string& why)> on_lost = nullptr;
  // Called when leading() changes as this coordinator sees it: taken, lapsed, renewed
  // after a lapse, lost or released (for the manifold_leader gauge). May be unset.
  std::function<void(bool leading, int64_t epoch)> on_change = nullptr;
};

class Leadership {
 public:
  explicit Leadership(LeadershipOptions options);
  ~Leadership();

  // Waits until the lease is this coordinator's or `stop` says to give up (asked between
  // attempts); the epoch, or Canceled.
  Result<int64_t> Await(const std::function<bool()>& stop);
  // Whether this coordinator leads by its own clock: false while its lease is not renewed
  // in time, and for good once another took it over.
  bool leading() const;
  int64_t epoch() const { return epoch_; }
  // While waiting as a standby: the API URL of the coordinator that leads ("" if none
  // does, as far as the last look at the lease tells).
  std::string leader_url() const;
  // Ends the renewals and, if still leading, releases the lease for a standby.
  void Release();

 private:
  void Renew();
  void Changed(bool leading);

  const LeadershipOptions options_;
  std::atomic<int64_t> epoch_{0};
  // Steady-clock deadline (ns since its epoch) past which this coordinator must not act.
  std::atomic<int64_t> deadline_ns_{0};
  std::atomic<bool> lost_{false};
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;   // guarded by mutex_
  std::string leader_url_;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace manifold
