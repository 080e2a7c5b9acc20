// HeldCaches: which registry cache images this agent's store holds, by cache ref, so that
// an agent that built or loaded a cache does not pull it again before its next build.
//
// A ref is held when every step image its index lists in the registry is one this agent
// pushed there or loaded from there (by manifest digest). What is noted is lost when the
// agent restarts (its next build pulls the cache once). The agent's disk cap may have
// pruned a held image since: that build then runs the steps it misses and pushes the cache
// again. Thread-safe.
#pragma once

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

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::set<std::string>> images_;  // by cache ref
};

}  // namespace manifold
