#include "bench/load_generator.h"

#include <algorithm>
#include <cmath>

namespace manifold::bench {

LoadGenerator::LoadGenerator(const BenchFarm& farm, const SimFleet& fleet, LoadOptions options)
    : farm_(farm), fleet_(fleet), options_(std::move(options)) {}

LoadGenerator::~LoadGenerator() { Stop(); }

void LoadGenerator::Start() {
  acked_at_start_ = fleet_.acked();
  for (int i = 0; i < options_.submitters; ++i) threads_.emplace_back([this] { Submit(); });
}

void LoadGenerator::Stop() {
  stopping_ = true;
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

std::string LoadGenerator::first_error() const {
  std::lock_guard lock(mutex_);
  return first_error_;
}

std::map<uint64_t, Clock::time_point> LoadGenerator::JobSubmitTimes() const {
  std::lock_guard lock(mutex_);
  return submitted_;
}

std::map<uint64_t, std::string> LoadGenerator::BuildTags() const {
  std::lock_guard lock(mutex_);
  return tags_;
}

void LoadGenerator::Submit() {
  const uint64_t jobs_per_build = options_.platforms.size();
  while (!stopping_) {
    uint64_t recorded = fleet_.acked() - acked_at_start_;
    if (reserved_jobs_.load() >= recorded + options_.max_outstanding_jobs) {
      std::this_thread::sleep_for(std::chrono::microseconds(500));
      continue;
    }
    uint64_t sequence = sequence_.fetch_add(1);
    if (options_.max_builds > 0 && sequence >= options_.max_builds) return;
    reserved_jobs_ += jobs_per_build;
    std::string tag = options_.tag_prefix + "-" + std::to_string(sequence);
    Clock::time_point at = Clock::now();
    Result<SubmittedBuild> build = farm_.SubmitBuild(options_.platforms, tag);
    if (!build.ok()) {
      ++errors_;
      reserved_jobs_ -= jobs_per_build;
      {
        std::lock_guard lock(mutex_);
        if (first_error_.empty()) first_error_ = build.status().message();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    ++builds_;
    std::lock_guard lock(mutex_);
    for (uint64_t job_id : build->job_ids) submitted_[job_id] = at;
    tags_[build->build_id] = tag;
  }
}

double Percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(values.size())));
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

}  // namespace manifold::bench
