// A scheduling pass turned into assignments: what the store records for each placement and
// what the chosen agent is sent.
//
// Pure functions over the loop's view: Schedule (coordinator/scheduler.h) decides, these
// describe the decisions for the store and build the Assign messages. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/messages.h"
#include "coordinator/agent_sessions.h"
#include "coordinator/build.h"
#include "coordinator/cache_plan.h"
#include "coordinator/job_view.h"
#include "coordinator/scheduler.h"

namespace manifold {

// The repositories a build pushes to, in the order of its tags, each once.
std::vector<std::string> Repositories(const BuildSpec& spec);

// The agents that can take a job now (connected, not draining, a free slot, no recent
// refusal), with the
// (repository, platform) pairs each built within `window`: their layer cache is warm.
std::vector<SchedulerAgent> FreeAgents(const AgentSessions::Map& sessions,
                                       const std::map<std::string, WarmCache>& warm_caches,
                                       LoopClock::time_point now, LoopClock::duration window);
// Notes that an agent built `repository` for `platform` at `now`, forgetting what is older
// than `window`.
void NoteWarm(WarmCache& warm, const std::string& repository, const Platform& platform,
              LoopClock::time_point now, LoopClock::duration window);

// What `agent_id` has cached for `repository` and `platform` at `now`: warm when it built
// them within `window`, as the scheduler ranks it; otherwise registry when the job reads a
// registry cache that `reads_fresh_registry_cache` says was pushed within its TTL.
JobCache CacheOf(const std::map<std::string, WarmCache>& warm_caches, const std::string& agent_id,
                 const std::string& repository, const Platform& platform, LoopClock::time_point now,
                 LoopClock::duration window, bool reads_fresh_registry_cache);

// Decides a scheduling pass over the waiting jobs (oldest first) and the agents with free
// slots, and describes each placement for the job's record. `pushes` within `ttl` of `now`
// mark the jobs whose registry cache a cold agent can start from.
std::vector<JobAssignment> PlanSchedulingPass(const WaitingJobs& pending,
                                              std::vector<SchedulerAgent> agents,
                                              const CachePushTimes& pushes,
                                              std::chrono::seconds ttl, LoopClock::time_point now);

// Where agents fetch build contexts from.
struct ContextSource {
  std::string public_url;  // the API's URL as agents reach it
  // Appended to context URLs (an access grant); empty: plain URLs.
  std::function<std::string(const std::string& digest)> url_query;
};

// The Assign message for attempt `attempt` of `job`, with the build's secrets (null: none)
// and its registry cache for the job's platform.
AssignMsg MakeAssignMsg(const QueuedJob& job, uint32_t attempt, const ContextSource& contexts,
                        const std::map<std::string, std::string>* secrets,
                        const CacheDefaults& cache = {});

}  // namespace manifold
