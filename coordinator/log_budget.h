// LogBudget: how much build output each job may store, as a token bucket per job.
//
// An agent streams a job's output in chunks; a RUN step that prints without end, or a
// hostile agent, must not fill the database or starve the loop. Each job may store a burst
// of output, refilled at a steady rate, in chunks up to a size. The first chunk dropped in
// a run is replaced by a notice so that whoever reads the log knows output is missing and
// why. Pure logic with the time passed in; not thread-safe (the loop owns it).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace manifold {

struct LogLimits {
  uint64_t bytes_per_second = 1u << 20;
  uint64_t burst_bytes = 16u << 20;
  uint64_t chunk_max_bytes = 1u << 20;
  // Beyond the rate: each job's stored output (log_cap.h; 0 keeps all), and the output
  // waiting for the database before agents are told to hold theirs (log_flow.h).
  uint64_t job_max_bytes = 2u << 20;
  uint64_t pending_max_bytes = 64u << 20;
};

class LogBudget {
 public:
  using Clock = std::chrono::steady_clock;

  enum class Verdict {
    kStore,            // within the budget: store the chunk
    kReplaceByNotice,  // over it, first in a run: store Notice() in the chunk's place
    kDrop,             // over it again: drop silently (counted by the caller)
  };

  explicit LogBudget(LogLimits limits) : limits_(limits) {}

  // Charges a chunk of `bytes` to `job_id`'s bucket at `now`.
  Verdict Charge(uint64_t job_id, uint64_t bytes, Clock::time_point now);
  // Forgets buckets idle long enough to be full again anyway, so the map follows the jobs
  // that are printing, not every job ever seen.
  void ForgetIdle(Clock::time_point now);
  // Why output is dropped, for the log and the coordinator's warning.
  std::string DropReason() const;
  // The text stored in place of the first dropped chunk.
  std::string Notice() const;
  size_t tracked_jobs() const { return buckets_.size(); }

 private:
  struct Bucket {
    double bytes = 0;
    Clock::time_point refilled;
    bool dropping = false;  // the job's log has been told that output is dropped
  };
  const LogLimits limits_;
  std::map<uint64_t, Bucket> buckets_;  // by job id
};

}  // namespace manifold
