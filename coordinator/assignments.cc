#include "coordinator/assignments.h"

#include <algorithm>

#include "common/reference.h"

namespace manifold {

std::vector<std::string> Repositories(const BuildSpec& spec) {
  std::vector<std::string> names;
  for (const std::string& tag : spec.tags) {
    Result<Reference> ref = ParseReference(tag);
    if (!ref.ok()) continue;  // validated at submit; a bad stored tag fails at merge
    if (std::find(names.begin(), names.end(), ref->Name()) == names.end()) {
      names.push_back(ref->Name());
    }
  }
  return names;
}

std::vector<SchedulerAgent> FreeAgents(const AgentSessions::Map& sessions,
                                       const std::map<std::string, WarmCache>& warm_caches,
                                       LoopClock::time_point now, LoopClock::duration window) {
  std::vector<SchedulerAgent> agents;
  for (const auto& [agent_id, session] : sessions) {
    if (session->draining || session->jobs.size() >= session->slots ||
        now < session->refused_until) {
      continue;
    }
    SchedulerAgent agent{agent_id, session->platforms,
                         session->slots - static_cast<uint32_t>(session->jobs.size())};
    if (auto warm = warm_caches.find(agent_id); warm != warm_caches.end()) {
      for (const auto& [key, built_at] : warm->second) {
        if (now - built_at <= window) agent.warm.insert(key);
      }
    }
    agents.push_back(std::move(agent));
  }
  return agents;
}

void NoteWarm(WarmCache& warm, const std::string& repository, const Platform& platform,
              LoopClock::time_point now, LoopClock::duration window) {
  warm[{repository, platform}] = now;
  std::erase_if(warm, [&](const auto& entry) { return now - entry.second > window; });
}

JobCache CacheOf(const std::map<std::string, WarmCache>& warm_caches, const std::string& agent_id,
                 const std::string& repository, const Platform& platform, LoopClock::time_point now,
                 LoopClock::duration window, bool reads_fresh_registry_cache) {
  const JobCache otherwise = reads_fresh_registry_cache ? JobCache::kRegistry : JobCache::kCold;
  auto agent = warm_caches.find(agent_id);
  if (agent == warm_caches.end()) return otherwise;
  auto built = agent->second.find({repository, platform});
  return built != agent->second.end() && now - built->second <= window ? JobCache::kWarm
                                                                       : otherwise;
}

std::vector<JobAssignment> PlanSchedulingPass(const WaitingJobs& pending,
                                              std::vector<SchedulerAgent> agents,
                                              const CachePushTimes& pushes,
                                              std::chrono::seconds ttl, LoopClock::time_point now) {
  std::vector<PendingJob> jobs;
  jobs.reserve(pending.size());
  for (const auto& [job_id, waiting] : pending) {
    std::optional<int64_t> cache_age_s;
    if (!waiting.repository.empty() && !waiting.job.spec->no_cache) {
      if (auto age = CacheAge(pushes, waiting.repository, waiting.job.platform, ttl, now)) {
        cache_age_s = std::chrono::duration_cast<std::chrono::seconds>(*age).count();
      }
    }
    jobs.push_back({job_id, waiting.job.platform, waiting.job.spec->emulation,
                    waiting.native_wait_over, waiting.repository, cache_age_s});
  }
  std::vector<JobAssignment> planned;
  for (const Assignment& a : Schedule(jobs, std::move(agents))) {
    const WaitingJob& waiting = pending.at(a.job_id);
    // `jobs` is in job id order, as `pending` is.
    auto job = std::lower_bound(jobs.begin(), jobs.end(), a.job_id,
                                [](const PendingJob& j, uint64_t id) { return j.job_id < id; });
    planned.push_back(
        {a.job_id, a.agent_id, a.emulated,
         DescribePlacement(a, waiting.job.spec->emulation, waiting.repository, job->cache_age_s)});
  }
  return planned;
}

AssignMsg MakeAssignMsg(const QueuedJob& job, uint32_t attempt, const ContextSource& contexts,
                        const std::map<std::string, std::string>* secrets,
                        const CacheDefaults& cache) {
  const BuildSpec& spec = *job.spec;
  AssignMsg assign;
  assign.job = {job.job_id, attempt};
  assign.build_id = job.build_id;
  assign.platform = job.platform;
  assign.context_digest = spec.context_digest;
  assign.context_url = contexts.public_url + "/v1/contexts/" + spec.context_digest;
  if (contexts.url_query) assign.context_url += contexts.url_query(spec.context_digest);
  assign.dockerfile = spec.dockerfile;
  assign.dockerfile_path = spec.dockerfile_path;
  assign.build_args = spec.build_args;
  assign.target = spec.target;
  assign.repositories = Repositories(spec);
  assign.labels = spec.labels;
  assign.annotations = spec.manifest_annotations;
  assign.no_cache = spec.no_cache;
  assign.pull = spec.pull;
  assign.network = spec.network;
  assign.entitlements = spec.entitlements;
  assign.limits = spec.limits;
  if (secrets != nullptr) assign.secrets = *secrets;
  assign.cache = ResolveRegistryCache(
      spec, job.platform, assign.repositories.empty() ? "" : assign.repositories.front(), cache);
  return assign;
}

}  // namespace manifold
