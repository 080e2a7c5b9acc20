// CacheMounts: an agent's RUN --mount=type=cache contents, kept per (repository,
// platform) across its builds, counted within its disk cap, and carried to other agents
// of the platform through the registry.
//
// buildah 1.28 keeps a cache mount without from= in TMPDIR/buildah-cache/ID (ID the mount's
// id=, or its target), so each (repository, platform) gets a directory of its own under
// the agent's work dir (WORK_DIR/cache-mounts/KEY), given to the build as its TMPDIR:
// builds of one repository and platform see what the last one left, and no other
// repository or platform (an emulated arm64 build never finds amd64 binaries). The
// ImageStore's pass counts these directories with the container storage against
// --cache-max-bytes and removes them with its images, least recently used first, never
// one a running job holds. A job of a cold agent (no directory for its repository and
// platform yet) pulls the artifact from its registry cache (`cache.from`, in order, within
// the TTL) before its build; a draining agent pushes each directory a job used since the
// agent started to that job's `cache.to`, within its drain grace
// (cache_mounts_artifact.h). Registry trouble never fails a job: the build runs cold.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "agent/metrics.h"
#include "agent/prune_plan.h"
#include "common/messages.h"
#include "common/registry.h"

namespace manifold {

struct CacheMountsOptions {
  std::string dir;                                    // WORK_DIR/cache-mounts
  uint64_t max_artifact_bytes = uint64_t{256} << 20;  // --cache-mounts-max-bytes, at most that
  RegistryOptions registry_options;                   // insecure registries, ...
  AgentMetrics* metrics = nullptr;                    // not owned; may be null
};

class CacheMounts {
 public:
  explicit CacheMounts(CacheMountsOptions options);
  CacheMounts(const CacheMounts&) = delete;
  CacheMounts& operator=(const CacheMounts&) = delete;

  // A running job's hold on its (repository, platform) directory.
  class Use {
   public:
    ~Use();
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;
    // The build's TMPDIR.
    const std::string& tmp_dir() const { return tmp_dir_; }

   private:
    friend class CacheMounts;
    Use(CacheMounts& mounts, std::string key, std::string tmp_dir)
        : mounts_(mounts), key_(std::move(key)), tmp_dir_(std::move(tmp_dir)) {}
    CacheMounts& mounts_;
    std::string key_;
    std::string tmp_dir_;
  };
  // Holds the directory of (repository, platform), pulling it from `cache.from` first
  // when this agent has none; `say` reports to the job's output what came of the pull.
  // `cache.to`, when set, is where a drain pushes it.
  std::unique_ptr<Use> Begin(const std::string& repository, const Platform& platform,
                             const RegistryCacheSpec& cache,
                             const std::function<void(const std::string&)>& say);

  // For the ImageStore's pass: each directory as an entry whose id IsEntry() knows, its
  // size and last use (milliseconds since the epoch); those held go in *in_use.
  std::vector<StoredImage> List(std::set<std::string>* in_use) const;
  static bool IsEntry(const std::string& id);
  // Removes a listed directory; false when a job holds it (or took it since the listing).
  bool Remove(const std::string& id);

  // Pushes each directory used since this agent started that has a `cache.to`, until
  // `deadline`; what it did and skipped is logged.
  void PushAll(std::chrono::steady_clock::time_point deadline);

 private:
  struct Entry {
    std::string repository;
    Platform platform;
    std::string push_to;
    int holders = 0;
    bool used = false;  // by a job of this agent's run
  };
  void End(const std::string& key);
  std::string KeyDir(const std::string& key) const;
  // Pulls into `tmp_dir` (which does not exist) from the first of `cache.from` that has a
  // fresh artifact; the line for the job's output.
  std::string Pull(const std::string& tmp_dir, const Platform& platform,
                   const RegistryCacheSpec& cache);

  const CacheMountsOptions options_;
  mutable std::mutex mutex_;  // guards entries_ and the directories' creation and removal
  std::map<std::string, Entry> entries_;
  std::mutex pull_mutex_;  // one pull at a time, so two jobs never unpack into one directory
};

}  // namespace manifold
