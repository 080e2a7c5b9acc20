// The registry cache of each job: which repositories its agent reads cache from and writes
// it to, and how recently a (repository, platform) had its cache pushed, for placement.
//
// A build's --cache-from/--cache-to refs, or else the farm-wide --cache-repo-template, are
// resolved to the job's platform's own repositories (common/registry_cache.h), so one
// platform never overwrites another's cache. Pure functions; thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/messages.h"
#include "common/platform.h"
#include "common/status.h"
#include "coordinator/build.h"
#include "coordinator/job_view.h"

namespace manifold {

struct CacheDefaults {
  // "REGISTRY/cache/{repo}": both the cache-from and cache-to ref of a build that names no
  // cache ref; {repo} is the image's repository path ("team/app"). Empty: no default.
  std::string repo_template;
  std::chrono::seconds ttl{0};  // cache pushed longer ago is not used; 0: no limit
};

// (image repository, platform) -> when its registry cache was last pushed.
using CachePushTimes = std::map<std::pair<std::string, Platform>, LoopClock::time_point>;

// (image repository, platform) -> the cache ref its last registry cache push went to.
using CacheRefs = std::map<std::pair<std::string, Platform>, std::string>;

// Checks a --cache-repo-template: it must contain {repo} and give a valid cache ref.
Status ValidateCacheRepoTemplate(const std::string& repo_template);

// The registry cache of `spec`'s job for `platform`, whose image goes to `repository`
// ("registry/repository", the first the build pushes to; may be empty).
RegistryCacheSpec ResolveRegistryCache(const BuildSpec& spec, const Platform& platform,
                                       const std::string& repository,
                                       const CacheDefaults& defaults);

// How long ago (repository, platform)'s cache was pushed, if that is within `ttl` (0: any
// age); nothing if it was never pushed or is too old to be used.
std::optional<LoopClock::duration> CacheAge(const CachePushTimes& pushes,
                                            const std::string& repository, const Platform& platform,
                                            std::chrono::seconds ttl, LoopClock::time_point now);

// What an agent that has just started, offering `platforms`, loads before its first build
// (a fresh node of an autoscaled fleet then starts warm): the registry caches of those
// platforms pushed within `ttl` (0: any age), newest first, at most `max`.
std::vector<WarmStartCache> WarmStartCaches(const CachePushTimes& pushes, const CacheRefs& refs,
                                            const std::vector<Platform>& platforms,
                                            std::chrono::seconds ttl, size_t max,
                                            LoopClock::time_point now);

}  // namespace manifold
