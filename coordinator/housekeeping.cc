#include "coordinator/housekeeping.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace manifold {

void Housekeeping::Run(LoopClock::time_point now) {
  PruneLogs(now);
  // Builds by state come from the store, which holds them all; a few seconds stale is fine.
  if (now - builds_counted_ > std::chrono::seconds(5)) {
    builds_counted_ = now;
    Result<std::map<std::string, int>> counts = store_.CountBuildsByState();
    if (counts.ok()) metrics_.SetBuildsByState(*counts);
  }
}

void Housekeeping::PruneLogs(LoopClock::time_point now) {
  if (log_retention_.count() == 0) return;
  // Short retentions (tests) are kept closely, long ones cost one small query a minute.
  auto every = std::clamp<LoopClock::duration>(log_retention_ / 4, std::chrono::seconds(1),
                                               std::chrono::minutes(1));
  if (now - logs_pruned_at_ < every) return;
  logs_pruned_at_ = now;
  Result<int> pruned = store_.PruneLogs(log_retention_, 100);
  if (!pruned.ok()) {
    spdlog::warn("cannot prune old build logs: {}", pruned.status().message());
  } else if (*pruned > 0) {
    spdlog::info("deleted the logs of {} build(s) that ended over {} s ago", *pruned,
                 log_retention_.count());
  }
}

}  // namespace manifold
