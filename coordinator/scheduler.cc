#include "coordinator/scheduler.h"

#include <map>

namespace manifold {
namespace {

struct Candidate {
  SchedulerAgent* agent = nullptr;
  bool emulated = false;
};

// Agents offering one platform, and how many free slots they hold between them.
struct PlatformPool {
  std::vector<Candidate> candidates;
  uint64_t free_slots = 0;
};

// Ranks `candidate` against `best` for `job`; true if it is better.
bool Better(const Candidate& candidate, bool candidate_warm, const Candidate& best,
            bool best_warm) {
  if (best.agent == nullptr) return true;
  if (candidate.emulated != best.emulated) return !candidate.emulated;
  if (candidate_warm != best_warm) return candidate_warm;
  if (candidate.agent->free_slots != best.agent->free_slots) {
    return candidate.agent->free_slots > best.agent->free_slots;
  }
  return candidate.agent->id < best.agent->id;
}

bool EmulationAllowed(const PendingJob& job) {
  switch (job.emulation) {
    case EmulationPolicy::kNever:
      return false;
    case EmulationPolicy::kFallback:
      return job.native_wait_over;
    case EmulationPolicy::kAllow:
      return true;
  }
  return false;
}

// "45s", "3m", "5h", "2d": the largest whole unit.
std::string DescribeAge(int64_t seconds) {
  if (seconds < 60) return std::to_string(seconds) + "s";
  if (seconds < 3600) return std::to_string(seconds / 60) + "m";
  if (seconds < 86400) return std::to_string(seconds / 3600) + "h";
  return std::to_string(seconds / 86400) + "d";
}

}  // namespace

std::string DescribePlacement(const Assignment& assignment, EmulationPolicy emulation,
                              std::string_view repository, std::optional<int64_t> cache_age_s) {
  switch (assignment.placement) {
    case Placement::kWarmCache:
      return "native, warm cache for " + std::string(repository);
    case Placement::kLeastLoaded:
      return "native, least loaded";
    case Placement::kRegistryCache:
      return "native, registry cache for " + std::string(repository) + " pushed " +
             DescribeAge(cache_age_s.value_or(0)) + " ago";
    case Placement::kEmulated:
      return std::string("emulated (--emulation ") + std::string(EmulationPolicyName(emulation)) +
             (emulation == EmulationPolicy::kFallback ? ", no native agent took it in time)" : ")");
  }
  return "";
}

std::vector<Assignment> Schedule(const std::vector<PendingJob>& pending,
                                 std::vector<SchedulerAgent> agents) {
  // Index agents by platform once, so each decision scans only agents that could take it.
  std::map<Platform, PlatformPool> by_platform;
  uint64_t free_anywhere = 0;
  for (SchedulerAgent& agent : agents) {
    free_anywhere += agent.free_slots;
    for (const PlatformOffer& offer : agent.platforms) {
      PlatformPool& pool = by_platform[offer.platform];
      pool.candidates.push_back({&agent, offer.emulated});
      pool.free_slots += agent.free_slots;
    }
  }
  std::vector<Assignment> assignments;
  for (const PendingJob& job : pending) {
    if (free_anywhere == 0) break;  // the rest of the queue waits, however long it is
    auto it = by_platform.find(job.platform);
    if (it == by_platform.end() || it->second.free_slots == 0) continue;
    const bool emulation_allowed = EmulationAllowed(job);
    const std::pair<std::string, Platform> cache_key{job.repository, job.platform};
    Candidate best;
    bool best_warm = false;
    for (const Candidate& candidate : it->second.candidates) {
      if (candidate.agent->free_slots == 0) continue;
      if (candidate.emulated && !emulation_allowed) continue;
      bool warm = !job.repository.empty() && candidate.agent->warm.count(cache_key) > 0;
      if (Better(candidate, warm, best, best_warm)) {
        best = candidate;
        best_warm = warm;
      }
    }
    if (best.agent == nullptr) continue;
    --best.agent->free_slots;
    --free_anywhere;
    // The agent's slot is gone from every platform it offers.
    for (const PlatformOffer& offer : best.agent->platforms)
      --by_platform[offer.platform].free_slots;
    Placement placement = best.emulated     ? Placement::kEmulated
                          : best_warm       ? Placement::kWarmCache
                          : job.cache_age_s ? Placement::kRegistryCache
                                            : Placement::kLeastLoaded;
    assignments.push_back({job.job_id, best.agent->id, best.emulated, placement});
  }
  return assignments;
}

}  // namespace manifold
