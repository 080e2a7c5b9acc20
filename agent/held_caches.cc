#include "agent/held_caches.h"

#include <algorithm>

namespace manifold {

void HeldCaches::Note(const std::string& cache_ref, const std::vector<std::string>& images) {
  std::lock_guard lock(mutex_);
  // Only the latest images of a ref: its older ones are not what the registry lists now.
  images_[cache_ref] = std::set<std::string>(images.begin(), images.end());
}

bool HeldCaches::Holds(const std::string& cache_ref, const std::vector<std::string>& images) const {
  if (images.empty()) return false;
  std::lock_guard lock(mutex_);
  auto held = images_.find(cache_ref);
  if (held == images_.end()) return false;
  return std::all_of(images.begin(), images.end(),
                     [&](const std::string& image) { return held->second.count(image) > 0; });
}

}  // namespace manifold
