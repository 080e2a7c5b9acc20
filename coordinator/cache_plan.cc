#include "coordinator/cache_plan.h"

#include <algorithm>

#include "common/reference.h"
#include "common/registry_cache.h"

namespace manifold {
namespace {

const char kRepoPlaceholder[] = "{repo}";

// The template with {repo} replaced by the repository path of `repository`.
std::string ExpandTemplate(const std::string& repo_template, const std::string& repository) {
  size_t slash = repository.find('/');
  std::string path = slash == std::string::npos ? repository : repository.substr(slash + 1);
  std::string ref = repo_template;
  size_t at = ref.find(kRepoPlaceholder);
  if (at != std::string::npos) ref.replace(at, sizeof(kRepoPlaceholder) - 1, path);
  return ref;
}

}  // namespace

Status ValidateCacheRepoTemplate(const std::string& repo_template) {
  if (repo_template.find(kRepoPlaceholder) == std::string::npos) {
    return Status::InvalidArgument("--cache-repo-template \"" + repo_template +
                                   "\" has no {repo}; give e.g. 'registry.example/cache/{repo}'");
  }
  if (Status s = ValidateCacheRef(ExpandTemplate(repo_template, "registry.example/team/app"));
      !s.ok()) {
    return s.WithContext("--cache-repo-template (with {repo} as team/app)");
  }
  return Status::Ok();
}

RegistryCacheSpec ResolveRegistryCache(const BuildSpec& spec, const Platform& platform,
                                       const std::string& repository,
                                       const CacheDefaults& defaults) {
  RegistryCacheSpec cache;
  cache.ttl_seconds = static_cast<uint32_t>(defaults.ttl.count());
  std::vector<std::string> from = spec.cache_from;
  std::string to = spec.cache_to;
  cache.mode = spec.cache_mode;
  if (from.empty() && to.empty() && !defaults.repo_template.empty() && !repository.empty()) {
    std::string ref = ExpandTemplate(defaults.repo_template, repository);
    if (ValidateCacheRef(ref).ok()) {
      from = {ref};
      to = ref;
    }
  }
  // --no-cache reads no cache, but still writes it, as buildx does.
  if (!spec.no_cache) {
    for (const std::string& ref : from) cache.from.push_back(PlatformCacheRef(ref, platform));
  }
  if (!to.empty()) cache.to = PlatformCacheRef(to, platform);
  return cache;
}

std::optional<LoopClock::duration> CacheAge(const CachePushTimes& pushes,
                                            const std::string& repository, const Platform& platform,
                                            std::chrono::seconds ttl, LoopClock::time_point now) {
  auto it = pushes.find({repository, platform});
  if (it == pushes.end()) return std::nullopt;
  LoopClock::duration age = now - it->second;
  if (ttl.count() > 0 && age > ttl) return std::nullopt;
  return age;
}

std::vector<WarmStartCache> WarmStartCaches(const CachePushTimes& pushes, const CacheRefs& refs,
                                            const std::vector<Platform>& platforms,
                                            std::chrono::seconds ttl, size_t max,
                                            LoopClock::time_point now) {
  std::vector<std::pair<LoopClock::time_point, WarmStartCache>> found;
  for (const auto& [key, at] : pushes) {
    const auto& [repository, platform] = key;
    if (std::find(platforms.begin(), platforms.end(), platform) == platforms.end()) continue;
    if (!CacheAge(pushes, repository, platform, ttl, now)) continue;
    auto ref = refs.find(key);
    if (ref == refs.end()) continue;
    found.push_back({at, {repository, platform, ref->second}});
  }
  std::stable_sort(found.begin(), found.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<WarmStartCache> caches;
  for (size_t i = 0; i < found.size() && i < max; ++i) caches.push_back(found[i].second);
  return caches;
}

}  // namespace manifold
