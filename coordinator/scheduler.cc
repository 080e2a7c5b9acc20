#include "coordinator/scheduler.h"

#include <map>

namespace manifold {
namespace {

// Ranks `candidate` against `best` for a job of one platform; true if it is better.
bool Better(const SchedulerAgent& candidate, bool candidate_emulated, const SchedulerAgent* best,
            bool best_emulated) {
  if (best == nullptr) return true;
  if (candidate_emulated != best_emulated) return !candidate_emulated;
  if (candidate.free_slots != best->free_slots) return candidate.free_slots > best->free_slots;
  return candidate.id < best->id;
}

}  // namespace

std::vector<Assignment> Schedule(const std::vector<PendingJob>& pending,
                                 std::vector<SchedulerAgent> agents) {
  // Index agents by platform once, so each decision scans only agents that could take it.
  std::map<Platform, std::vector<std::pair<SchedulerAgent*, bool>>> by_platform;
  for (SchedulerAgent& agent : agents) {
    for (const PlatformOffer& offer : agent.platforms) {
      by_platform[offer.platform].emplace_back(&agent, offer.emulated);
    }
  }
  std::vector<Assignment> assignments;
  for (const PendingJob& job : pending) {
    auto it = by_platform.find(job.platform);
    if (it == by_platform.end()) continue;
    SchedulerAgent* best = nullptr;
    bool best_emulated = false;
    for (auto [agent, emulated] : it->second) {
      if (agent->free_slots == 0) continue;
      if (Better(*agent, emulated, best, best_emulated)) {
        best = agent;
        best_emulated = emulated;
      }
    }
    if (best == nullptr) continue;
    --best->free_slots;
    assignments.push_back({job.job_id, best->id, best_emulated});
  }
  return assignments;
}

}  // namespace manifold
