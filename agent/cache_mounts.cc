#include "agent/cache_mounts.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "agent/cache_mounts_artifact.h"
#include "agent/disk_usage.h"
#include "common/digest.h"
#include "common/reference.h"

namespace manifold {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kEntryPrefix = "cache-mounts/";

int64_t SecondsNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The directory's last use, in milliseconds since the epoch: its stamp file's mtime.
int64_t LastUse(const fs::path& dir) {
  std::error_code ec;
  fs::file_time_type at = fs::last_write_time(dir / "last-use", ec);
  if (ec) return 0;
  auto since_epoch = std::chrono::file_clock::to_sys(at).time_since_epoch();
  return std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count();
}

void Stamp(const fs::path& dir) {
  std::ofstream(dir / "last-use", std::ios::trunc).flush();
  std::error_code ec;
  fs::last_write_time(dir / "last-use", fs::file_time_type::clock::now(), ec);
}

// "registry/repository" split for a RegistryClient; an error names the flag's value.
Result<Reference> CacheRepository(const std::string& name) {
  Result<Reference> parsed = ParseReference(name);
  if (!parsed.ok()) return parsed.status().WithContext("registry cache repository " + name);
  return parsed;
}

}  // namespace

CacheMounts::CacheMounts(CacheMountsOptions options) : options_(std::move(options)) {}

CacheMounts::Use::~Use() { mounts_.End(key_); }

std::string CacheMounts::KeyDir(const std::string& key) const {
  return (fs::path(options_.dir) / key).string();
}

std::unique_ptr<CacheMounts::Use> CacheMounts::Begin(
    const std::string& repository, const Platform& platform, const RegistryCacheSpec& cache,
    const std::function<void(const std::string&)>& say) {
  const std::string key =
      DigestHex(Sha256Digest(repository + " " + platform.ToString())).substr(0, 24);
  const std::string tmp_dir = KeyDir(key) + "/tmp";
  bool cold = false;
  {
    std::lock_guard lock(mutex_);
    Entry& entry = entries_[key];
    entry.repository = repository;
    entry.platform = platform;
    if (!cache.to.empty()) entry.push_to = cache.to;
    entry.used = true;
    ++entry.holders;
    std::error_code ec;
    fs::create_directories(KeyDir(key), ec);
    Stamp(KeyDir(key));
    cold = !fs::exists(tmp_dir, ec);
  }
  auto use = std::unique_ptr<Use>(new Use(*this, key, tmp_dir));
  std::lock_guard pulling(pull_mutex_);
  std::error_code ec;
  if (cold && !fs::exists(tmp_dir, ec)) {
    if (!cache.from.empty()) say(Pull(tmp_dir, platform, cache));
    fs::create_directories(tmp_dir, ec);
  }
  return use;
}

std::string CacheMounts::Pull(const std::string& tmp_dir, const Platform& platform,
                              const RegistryCacheSpec& cache) {
  std::string outcome;
  for (const std::string& from : cache.from) {
    Result<Reference> repository = CacheRepository(from);
    Result<uint64_t> pulled =
        repository.ok()
            ? PullCacheMounts(RegistryClient(repository->registry, options_.registry_options),
                              repository->repository, tmp_dir, SecondsNow(), cache.ttl_seconds,
                              options_.max_artifact_bytes)
            : Result<uint64_t>(repository.status());
    if (pulled.ok()) {
      if (options_.metrics != nullptr) {
        options_.metrics->CountCacheMounts(platform, "pull", "succeeded", *pulled);
      }
      return "pulled cache mounts from " + from + " (" + std::to_string(*pulled) + " bytes)";
    }
    const bool none = pulled.status().code() == Status::Code::kNotFound;
    if (options_.metrics != nullptr) {
      options_.metrics->CountCacheMounts(platform, "pull", none ? "none" : "failed", 0);
    }
    if (!none) spdlog::warn("cache mounts not pulled: {}", pulled.status().message());
    outcome += (outcome.empty() ? "" : "; ") +
               (none ? from + " has no cache mounts" : pulled.status().message());
  }
  return "cache mounts start empty: " + outcome;
}

void CacheMounts::End(const std::string& key) {
  std::lock_guard lock(mutex_);
  --entries_[key].holders;
  Stamp(KeyDir(key));
}

std::vector<StoredImage> CacheMounts::List(std::set<std::string>* in_use) const {
  std::vector<StoredImage> listed;
  std::lock_guard lock(mutex_);
  std::error_code ec;
  for (fs::directory_iterator it(options_.dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_directory()) continue;
    const std::string key = it->path().filename().string();
    StoredImage entry;
    entry.id = std::string(kEntryPrefix) + key;
    auto known = entries_.find(key);
    entry.names = {known != entries_.end() ? "cache mounts of " + known->second.repository + " " +
                                                 known->second.platform.ToString()
                                           : "cache mounts " + key};
    entry.bytes = DiskUsage(it->path().string());
    entry.last_used = LastUse(it->path());
    if (known != entries_.end() && known->second.holders > 0) in_use->insert(entry.id);
    listed.push_back(std::move(entry));
  }
  return listed;
}

bool CacheMounts::IsEntry(const std::string& id) { return id.rfind(kEntryPrefix, 0) == 0; }

bool CacheMounts::Remove(const std::string& id) {
  if (!IsEntry(id)) return false;
  const std::string key = id.substr(kEntryPrefix.size());
  if (key.empty() || key.find('/') != std::string::npos || key[0] == '.') return false;
  std::lock_guard lock(mutex_);
  if (auto known = entries_.find(key); known != entries_.end()) {
    if (known->second.holders > 0) return false;
    entries_.erase(known);
  }
  std::error_code ec;
  fs::remove_all(KeyDir(key), ec);
  return !ec;
}

void CacheMounts::PushAll(std::chrono::steady_clock::time_point deadline) {
  std::map<std::string, Entry> entries;
  {
    std::lock_guard lock(mutex_);
    entries = entries_;
  }
  for (const auto& [key, entry] : entries) {
    if (!entry.used || entry.push_to.empty()) continue;
    if (std::chrono::steady_clock::now() >= deadline) {
      spdlog::warn("the drain grace is over: the cache mounts of {} {} are not pushed to {}",
                   entry.repository, entry.platform.ToString(), entry.push_to);
      continue;
    }
    if (!HoldsCacheMounts(KeyDir(key) + "/tmp")) {
      if (options_.metrics != nullptr) {
        options_.metrics->CountCacheMounts(entry.platform, "push", "none", 0);
      }
      spdlog::info("the builds of {} {} left no cache mounts to push", entry.repository,
                   entry.platform.ToString());
      continue;
    }
    Result<Reference> repository = CacheRepository(entry.push_to);
    uint64_t bytes = 0;
    Status pushed = repository.status();
    if (repository.ok()) {
      RegistryClient registry(repository->registry, options_.registry_options);
      pushed = PushCacheMounts(registry, repository->repository, KeyDir(key) + "/tmp",
                               entry.platform, SecondsNow(), options_.max_artifact_bytes, &bytes);
    }
    const bool too_large = pushed.code() == Status::Code::kFailedPrecondition;
    if (options_.metrics != nullptr) {
      options_.metrics->CountCacheMounts(
          entry.platform, "push", pushed.ok() ? "succeeded" : (too_large ? "too_large" : "failed"),
          bytes);
    }
    if (pushed.ok()) {
      spdlog::info("pushed the cache mounts of {} {} to {}:{} ({} bytes)", entry.repository,
                   entry.platform.ToString(), entry.push_to, kCacheMountsTag, bytes);
    } else {
      spdlog::warn("the cache mounts of {} {} are not pushed: {}", entry.repository,
                   entry.platform.ToString(), pushed.message());
    }
  }
}

}  // namespace manifold
