// Scheduling decisions: which pending job goes to which agent.
//
// A pure function over an in-memory snapshot: no sockets, no SQL, so it is tested like
// an algorithm and its cost is measured alone. The coordinator's loop builds the inputs
// from its view, calls Schedule, and carries out the assignments (each one a store
// transaction). Stateless and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/messages.h"
#include "common/platform.h"

namespace manifold {

struct SchedulerAgent {
  std::string id;
  std::vector<PlatformOffer> platforms;
  uint32_t free_slots = 0;
};

struct PendingJob {
  uint64_t job_id = 0;
  Platform platform;
};

struct Assignment {
  uint64_t job_id = 0;
  std::string agent_id;
  bool emulated = false;
  bool operator==(const Assignment&) const = default;
};

// Assigns pending jobs, oldest first (the order given), each to an agent that serves the
// job's platform and has a free slot. A native agent is preferred over an emulated one;
// among equals, the one with the most free slots (spreading load), then the smallest id
// (deterministic). A job no agent can take now stays pending and does not block later
// jobs of other platforms.
std::vector<Assignment> Schedule(const std::vector<PendingJob>& pending,
                                 std::vector<SchedulerAgent> agents);

}  // namespace manifold
