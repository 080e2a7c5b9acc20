#include "agent/warm_start.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>

#include "agent/cache_transfer.h"

namespace manifold {

namespace fs = std::filesystem;

WarmStart::WarmStart(Builder& builder, HeldCaches& held, WarmStartOptions options)
    : builder_(builder), held_(held), options_(std::move(options)) {}

WarmStart::~WarmStart() { Stop(); }

void WarmStart::Start(std::vector<WarmStartCache> caches, uint32_t ttl_seconds) {
  if (started_) return;
  started_ = true;
  if (caches.empty()) return;
  if (!builder_.KeepsRegistryCache()) {
    spdlog::info("warm start: {} registry cache(s) named, but the {} backend keeps none",
                 caches.size(), builder_.Name());
    return;
  }
  // Marked before the thread runs, so that a job assigned right after the welcome waits.
  held_.BeginLoading(caches.front().cache_ref);
  thread_ =
      std::thread([this, caches = std::move(caches), ttl_seconds] { Run(caches, ttl_seconds); });
}

void WarmStart::Stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void WarmStart::Run(const std::vector<WarmStartCache>& caches, uint32_t ttl_seconds) {
  const auto start = std::chrono::steady_clock::now();
  const std::string root = options_.work_dir + "/warm-start";
  int loaded = 0;
  int images = 0;
  for (size_t i = 0; i < caches.size(); ++i) {
    const WarmStartCache& cache = caches[i];
    // Jobs that read this cache wait for it from here; one that began before loads its own.
    if (i > 0) held_.BeginLoading(cache.cache_ref);
    if (!stopping_) {
      // The pulls name the images after the layout's directory: the cache image's name.
      const std::string dir = root + "/" + std::to_string(i + 1) + "/" +
                              CacheImageName(cache.repository, cache.platform);
      if (Load(cache, ttl_seconds, dir, &images)) ++loaded;
      std::error_code ec;
      fs::remove_all(root + "/" + std::to_string(i + 1), ec);
    }
    held_.EndLoading(cache.cache_ref);
  }
  spdlog::info("warm start: loaded {} of {} registry cache(s), {} step image(s), in {:.1f} s",
               loaded, caches.size(), images,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

bool WarmStart::Load(const WarmStartCache& cache, uint32_t ttl_seconds, const std::string& dir,
                     int* images) {
  RegistryCacheSpec spec;
  spec.from = {cache.cache_ref};
  spec.ttl_seconds = ttl_seconds;
  std::string said;
  CacheFetch fetched = FetchRegistryCache(spec, options_.registry, &held_, dir,
                                          [&](const std::string& text) { said = text; });
  if (options_.metrics != nullptr)
    options_.metrics->CountCacheBytes(cache.platform, fetched.bytes, 0);
  auto refs = fetched.refs.find(cache.cache_ref);
  bool loaded = refs != fetched.refs.end();
  if (loaded && fetched.images > 0) {
    Status s = builder_.LoadRegistryCache(
        dir, CacheImageName(cache.repository, cache.platform),
        [](std::string_view output) { spdlog::debug("warm start: {}", output); }, &stopping_);
    if (!s.ok()) said = s.message();
    loaded = s.ok();
  }
  if (loaded) {
    held_.Note(cache.cache_ref, refs->second);
    *images += static_cast<int>(refs->second.size());
    spdlog::info("warm start: {} ({}): {}", cache.repository, cache.platform.ToString(), said);
  } else {
    spdlog::warn("warm start: {} ({}) not loaded: {}", cache.repository, cache.platform.ToString(),
                 said);
  }
  if (options_.metrics != nullptr) options_.metrics->CountWarmStartCache(cache.platform, loaded);
  return loaded;
}

}  // namespace manifold
