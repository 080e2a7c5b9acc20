#include "coordinator/merge_order.h"

namespace manifold {

std::optional<size_t> NextMerge(const std::deque<BuildRecord>& waiting,
                                const std::set<std::string>& tags_in_flight) {
  std::set<std::string> taken = tags_in_flight;
  for (size_t i = 0; i < waiting.size(); ++i) {
    const std::vector<std::string>& tags = waiting[i].spec.tags;
    bool blocked = false;
    for (const std::string& tag : tags) blocked = blocked || taken.count(tag) > 0;
    if (!blocked) return i;
    taken.insert(tags.begin(), tags.end());  // nor may a later build pass this one
  }
  return std::nullopt;
}

}  // namespace manifold
