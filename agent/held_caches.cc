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

void HeldCaches::BeginLoading(const std::string& cache_ref) {
  std::lock_guard lock(mutex_);
  loading_.insert(cache_ref);
}

void HeldCaches::EndLoading(const std::string& cache_ref) {
  {
    std::lock_guard lock(mutex_);
    loading_.erase(cache_ref);
  }
  loaded_.notify_all();
}

void HeldCaches::AwaitLoaded(const std::string& cache_ref,
                             std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  loaded_.wait_for(lock, timeout, [&] { return loading_.count(cache_ref) == 0; });
}

}  // namespace manifold
