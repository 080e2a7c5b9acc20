// Scheduling decisions: which pending job goes to which agent, and why.
//
// A pure function over an in-memory snapshot: no sockets, no SQL, no clock, so it is
// tested like an algorithm and its cost is measured alone. The coordinator's loop builds
// the inputs from its view (including whether a job has waited long enough for a native
// agent), calls Schedule, and carries out the assignments (each one a store transaction).
// Stateless and thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/platform.h"
#include "coordinator/emulation.h"

namespace manifold {

struct SchedulerAgent {
  std::string id;
  std::vector<PlatformOffer> platforms;
  uint32_t free_slots = 0;
  // (repository, platform) pairs this agent built recently: its layer cache is warm for them.
  std::set<std::pair<std::string, Platform>> warm{};
};

struct PendingJob {
  uint64_t job_id = 0;
  Platform platform;
  EmulationPolicy emulation = EmulationPolicy::kFallback;
  // For kFallback: the job has waited the configured time for a native agent.
  bool native_wait_over = false;
  // The repository the job pushes to, the key of cache affinity; empty for none.
  std::string repository{};
  // Seconds since the registry cache of (repository, platform) was pushed, when within
  // the cache TTL: any cold agent can start from it. Nothing: no usable registry cache.
  std::optional<int64_t> cache_age_s{};
};

// Why an agent was chosen, recorded with the assignment for people to read.
enum class Placement {
  kWarmCache,      // native, and it recently built this repository for this platform
  kLeastLoaded,    // native, the one with the most free slots (cold: no cache to start from)
  kRegistryCache,  // native and cold, the most free slots, but the registry cache is recent
  kEmulated,       // no native agent could take it and the build's policy allows emulation
};

struct Assignment {
  uint64_t job_id = 0;
  std::string agent_id;
  bool emulated = false;
  Placement placement = Placement::kLeastLoaded;
  bool operator==(const Assignment&) const = default;
};

// One line for a job's record: "native, warm cache for registry/app", "native, registry
// cache for registry/app pushed 3m ago" (cache_age_s from the job).
std::string DescribePlacement(const Assignment& assignment, EmulationPolicy emulation,
                              std::string_view repository,
                              std::optional<int64_t> cache_age_s = std::nullopt);

// Assigns pending jobs, oldest first (the order given), each to an agent that serves the
// job's platform, has a free slot and is allowed by the job's emulation policy. Agents
// rank: native before emulated; then a warm cache for the job's repository and platform;
// (with none free, a cold native agent is next best: placed as kRegistryCache when the
// job's registry cache is recent, so it starts from that); then the most free slots (spreading
// load); then the smallest id (deterministic). A job no agent can take now stays pending and does
// not block later jobs. Once a platform has no free slot left, its remaining jobs cost O(1) each,
// and once no agent has one the pass ends, so a deep queue stays cheap.
std::vector<Assignment> Schedule(const std::vector<PendingJob>& pending,
                                 std::vector<SchedulerAgent> agents);

}  // namespace manifold
