#include "coordinator/cold_build_times.h"

#include <algorithm>
#include <vector>

namespace manifold {

ColdBuildTimes::ColdBuildTimes(size_t max_keys, size_t samples)
    : max_keys_(std::max<size_t>(max_keys, 1)), samples_(std::max<size_t>(samples, 1)) {}

std::optional<double> ColdBuildTimes::Observe(const std::string& repository,
                                              const Platform& platform, JobCache cache,
                                              double seconds) {
  std::optional<double> median = Median(repository, platform);
  if (cache == JobCache::kCold) {
    Key key{repository, platform};
    auto it = entries_.find(key);
    if (it == entries_.end() && entries_.size() >= max_keys_) {
      // A linear scan, only when a new key arrives at a full map: cold jobs are rare
      // next to the loop's other work, and max_keys_ is small.
      entries_.erase(std::min_element(entries_.begin(), entries_.end(), [](auto& a, auto& b) {
        return a.second.added < b.second.added;
      }));
    }
    Entry& entry = entries_[key];
    entry.seconds.push_back(seconds);
    if (entry.seconds.size() > samples_) entry.seconds.pop_front();
    entry.added = ++clock_;
  }
  if (!median || *median <= 0) return std::nullopt;
  return seconds / *median;
}

std::optional<double> ColdBuildTimes::Median(const std::string& repository,
                                             const Platform& platform) const {
  auto it = entries_.find({repository, platform});
  if (it == entries_.end() || it->second.seconds.empty()) return std::nullopt;
  std::vector<double> sorted(it->second.seconds.begin(), it->second.seconds.end());
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

}  // namespace manifold
