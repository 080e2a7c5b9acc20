// HeldCaches: which registry cache images this agent's store holds, by cache ref, so that
// an agent that built or loaded a cache does not pull it again before its next build.
//
// A ref is held when every step image its index lists in the registry is one this agent
// pushed there or loaded from there (by manifest digest). What is noted is lost when the
// agent restarts (its next build pulls the cache once). The agent's disk cap may have
// pruned a held image since: that build then runs the steps it misses and pushes the cache
// again. A warm start (agent/warm_start.h) marks a ref it is loading, and a job that reads
// the ref waits for that load instead of running a second one beside it. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace manifold {

class HeldCaches {
 public:
  // The store now holds `images` (manifest digests) of `cache_ref`.
  void Note(const std::string& cache_ref, const std::vector<std::string>& images);
  // Whether the store holds every one of `images` of `cache_ref` (false for none).
  bool Holds(const std::string& cache_ref, const std::vector<std::string>& images) const;

  // A load of `cache_ref` into the store begins or ends.
  void BeginLoading(const std::string& cache_ref);
  void EndLoading(const std::string& cache_ref);
  // Returns once no load of `cache_ref` is under way, or after `timeout`.
  void AwaitLoaded(const std::string& cache_ref, std::chrono::milliseconds timeout) const;

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable loaded_;
  std::map<std::string, std::set<std::string>> images_;  // by cache ref
  std::set<std::string> loading_;
};

}  // namespace manifold
