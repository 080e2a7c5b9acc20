#include "coordinator/log_budget.h"

#include <algorithm>

namespace manifold {

LogBudget::Verdict LogBudget::Charge(uint64_t job_id, uint64_t bytes, Clock::time_point now) {
  const double burst = static_cast<double>(limits_.burst_bytes);
  auto [it, created] = buckets_.try_emplace(job_id);
  Bucket& bucket = it->second;
  if (created) {
    bucket.bytes = burst;
  } else {
    double refill = std::chrono::duration<double>(now - bucket.refilled).count() *
                    static_cast<double>(limits_.bytes_per_second);
    bucket.bytes = std::min(bucket.bytes + refill, burst);
  }
  bucket.refilled = now;
  const double size = static_cast<double>(bytes);
  if (bytes <= limits_.chunk_max_bytes && size <= bucket.bytes) {
    bucket.bytes -= size;
    bucket.dropping = false;
    return Verdict::kStore;
  }
  if (bucket.dropping) return Verdict::kDrop;
  bucket.dropping = true;
  return Verdict::kReplaceByNotice;
}

void LogBudget::ForgetIdle(Clock::time_point now) {
  auto refill_time = std::chrono::duration<double>(
      static_cast<double>(limits_.burst_bytes) /
      static_cast<double>(std::max<uint64_t>(limits_.bytes_per_second, 1)));
  std::erase_if(buckets_,
                [&](const auto& entry) { return now - entry.second.refilled > refill_time; });
}

std::string LogBudget::DropReason() const {
  return "more than " + std::to_string(limits_.bytes_per_second) + " bytes/s (bursts up to " +
         std::to_string(limits_.burst_bytes) + " bytes, chunks up to " +
         std::to_string(limits_.chunk_max_bytes) + " bytes)";
}

std::string LogBudget::Notice() const {
  return "\nmanifold: build output dropped here: the job sent " + DropReason() +
         "; see the coordinator's --log-bytes-per-second\n";
}

}  // namespace manifold
