// ColdBuildTimes: the median duration of recent cold jobs per (repository, platform), the
// yardstick a cached job is measured against (manifold_job_cold_ratio). A job with a warm
// cache is only fast compared with a cold build of the same project and platform, so the
// median is kept per repository here, while the metrics carry only the platform: series per
// repository would grow without bound on a farm that builds many.
//
// Bounded: the last `samples` cold durations of each key, and at most `max_keys` keys, the
// one least recently given a cold duration forgotten first. In memory only: after a restart
// a key's ratios start again with its next cold job. Not thread-safe: the agent loop owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "common/platform.h"
#include "coordinator/job_view.h"

namespace manifold {

class ColdBuildTimes {
 public:
  explicit ColdBuildTimes(size_t max_keys = 4096, size_t samples = 15);

  // A job of `repository` and `platform` succeeded in `seconds` with `cache`. Returns its
  // duration over the median of the cold ones recorded before it (none: nullopt), then
  // records it when it was cold.
  std::optional<double> Observe(const std::string& repository, const Platform& platform,
                                JobCache cache, double seconds);

  // The median of the recorded cold durations, nullopt when there are none.
  std::optional<double> Median(const std::string& repository, const Platform& platform) const;
  size_t keys() const { return entries_.size(); }

 private:
  using Key = std::pair<std::string, Platform>;
  struct Entry {
    std::deque<double> seconds;  // oldest first, at most samples_
    uint64_t added = 0;          // when it last got one, in Observe calls
  };

  const size_t max_keys_;
  const size_t samples_;
  uint64_t clock_ = 0;
  std::map<Key, Entry> entries_;
};

}  // namespace manifold
