// The loop's in-memory view of jobs: those waiting for an agent and those an agent holds.
//
// Rebuilt from the store at start and kept by the loop thread alone; the scheduling pass,
// the timeout rules and the loop read and change it. Plain values; not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "common/messages.h"
#include "common/platform.h"
#include "coordinator/build.h"

namespace manifold {

using LoopClock = std::chrono::steady_clock;

struct WaitingJob {
  QueuedJob job;
  LoopClock::time_point since;
  std::string repository;         // cache affinity key: the first repository it pushes to
  bool native_wait_over = false;  // --emulation fallback: emulated agents may take it now
  // Why it waits as last recorded in its placement (waiting_reasons.h), "" for no reason;
  // nullopt when the store's is not known (read at start), so the next check records it.
  std::optional<std::string> reason = std::string();
};

// What the job's agent had cached for its repository and platform when it was assigned,
// as the coordinator knew it: warm, it built them within the cache affinity window;
// registry, it did not, but the job reads a registry cache pushed within its TTL; cold,
// neither that the coordinator knows of.
enum class JobCache { kCold, kWarm, kRegistry };

// The value of the cache label of the cache metrics: "cold", "warm" or "registry".
constexpr const char* JobCacheName(JobCache cache) {
  switch (cache) {
    case JobCache::kWarm:
      return "warm";
    case JobCache::kRegistry:
      return "registry";
    case JobCache::kCold:
      break;
  }
  return "cold";
}

struct RunningJob {
  JobRef job;
  std::string agent_id;
  Platform platform;
  LoopClock::time_point deadline;
  uint32_t timeout_s = 0;  // 0: resumed after a restart, the limit is not known
  LoopClock::time_point assigned_at;
  std::string repository{};  // cache affinity key
  JobCache cache = JobCache::kCold;
};

using WaitingJobs = std::map<uint64_t, WaitingJob>;  // by job id: oldest first
using RunningJobs = std::map<uint64_t, RunningJob>;  // by job id
// The jobs an agent's session was given: job id -> the number of its assign among those
// sent in the session (1, 2, ...), 0 for a job it held when the session began.
using GivenJobs = std::map<uint64_t, uint64_t>;

// (repository, platform) -> when an agent last built it.
using WarmCache = std::map<std::pair<std::string, Platform>, LoopClock::time_point>;

}  // namespace manifold
