// WarmStart: loads the registry caches the coordinator names in an agent's first welcome
// into its store, so that a node that has just joined with an empty disk (an autoscaled
// one) builds as the warm agent would have, instead of loading the cache in its first job.
//
// The caches are loaded one after another on a thread of its own, newest push first, while
// the agent already takes jobs: a job that reads a cache being loaded waits for that load
// (HeldCaches), one that reads another goes on. A cache that cannot be fetched or loaded is
// logged and skipped; what a warm start could not load, the job loads as before. Start()
// and Stop() are called from the agent's thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "agent/builder.h"
#include "agent/held_caches.h"
#include "agent/metrics.h"
#include "common/messages.h"
#include "common/registry.h"

namespace manifold {

struct WarmStartOptions {
  std::string work_dir;             // the layouts go under work_dir/warm-start, removed after
  RegistryOptions registry;         // as the jobs' (insecure registries, credentials)
  AgentMetrics* metrics = nullptr;  // not owned; null: nothing is counted
};

class WarmStart {
 public:
  WarmStart(Builder& builder, HeldCaches& held, WarmStartOptions options);
  ~WarmStart();

  // Begins loading `caches` (pushed at most `ttl_seconds` ago; 0: any age). Only the first
  // call does anything: a reconnected agent's store is no longer empty.
  void Start(std::vector<WarmStartCache> caches, uint32_t ttl_seconds);
  // Stops the load under way (its buildah process), if any; the rest are left to the jobs.
  void Stop();

 private:
  void Run(const std::vector<WarmStartCache>& caches, uint32_t ttl_seconds);
  // Fetches and loads one cache; false if it was not loaded.
  bool Load(const WarmStartCache& cache, uint32_t ttl_seconds, const std::string& dir, int* images);

  Builder& builder_;
  HeldCaches& held_;
  const WarmStartOptions options_;
  bool started_ = false;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace manifold
