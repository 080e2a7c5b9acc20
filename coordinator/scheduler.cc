#include "coordinator/scheduler.h"

#include <map>
#include <queue>

namespace manifold {
namespace {

// One agent as a candidate for one platform, with the free slots it had when queued.
struct Candidate {
  SchedulerAgent* agent;
  bool emulated;
  uint32_t free_slots;
};

// Heap order: the best candidate on top (native, then most free slots, then smallest id).
struct WorseThan {
  bool operator()(const Candidate& a, const Candidate& b) const {
    if (a.emulated != b.emulated) return a.emulated;
    if (a.free_slots != b.free_slots) return a.free_slots < b.free_slots;
    return a.agent->id > b.agent->id;
  }
};

using CandidateHeap = std::priority_queue<Candidate, std::vector<Candidate>, WorseThan>;

// The best agent with a free slot in `heap`, or nullptr when none is left. An agent serving
// several platforms sits in several heaps, so an entry may overstate its free slots (they
// only ever go down): such an entry is put back with the current count before deciding.
// Every other entry then ranks at least as well as its agent really does, so the top
// entry, once current, is the best.
const Candidate* Best(CandidateHeap& heap) {
  while (!heap.empty()) {
    Candidate top = heap.top();
    if (top.free_slots == top.agent->free_slots) return &heap.top();
    heap.pop();
    if (top.agent->free_slots > 0) heap.push({top.agent, top.emulated, top.agent->free_slots});
  }
  return nullptr;
}

}  // namespace

std::vector<Assignment> Schedule(const std::vector<PendingJob>& pending,
                                 std::vector<SchedulerAgent> agents) {
  // Agents with free slots by platform, best first, built once: each decision then costs a
  // heap operation, and scanning the queue stops as soon as no slot is left anywhere, so a
  // deep queue costs nothing beyond the jobs that can be placed (or skipped) now.
  std::map<Platform, CandidateHeap> by_platform;
  uint64_t free_slots = 0;
  for (SchedulerAgent& agent : agents) {
    if (agent.free_slots == 0) continue;
    free_slots += agent.free_slots;
    for (const PlatformOffer& offer : agent.platforms) {
      by_platform[offer.platform].push({&agent, offer.emulated, agent.free_slots});
    }
  }
  std::vector<Assignment> assignments;
  for (const PendingJob& job : pending) {
    if (free_slots == 0) break;
    auto it = by_platform.find(job.platform);
    if (it == by_platform.end()) continue;
    const Candidate* best = Best(it->second);
    if (best == nullptr) {
      by_platform.erase(it);  // this platform is full: later jobs of it skip at once
      continue;
    }
    SchedulerAgent* agent = best->agent;
    bool emulated = best->emulated;
    it->second.pop();
    --agent->free_slots;
    --free_slots;
    if (agent->free_slots > 0) it->second.push({agent, emulated, agent->free_slots});
    assignments.push_back({job.job_id, agent->id, emulated});
  }
  return assignments;
}

}  // namespace manifold
