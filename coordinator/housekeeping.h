// Housekeeping: the store's periodic chores that the loop runs between frames: deleting
// build logs past their retention, and counting builds by state for the gauges.
//
// Each runs at most at its own pace whatever the loop's pace (logs: a quarter of the
// retention, within a second and a minute; counts: every five seconds), so a busy loop
// costs the database no more. Not thread-safe (the loop owns it).
#pragma once

#include <chrono>

#include "coordinator/job_view.h"
#include "coordinator/loop_store.h"
#include "coordinator/metrics.h"

namespace manifold {

class Housekeeping {
 public:
  // `log_retention` zero keeps logs forever.
  Housekeeping(LoopStore& store, Metrics& metrics, std::chrono::seconds log_retention)
      : store_(store), metrics_(metrics), log_retention_(log_retention) {}

  void Run(LoopClock::time_point now);

 private:
  void PruneLogs(LoopClock::time_point now);

  LoopStore& store_;
  Metrics& metrics_;
  const std::chrono::seconds log_retention_;
  LoopClock::time_point logs_pruned_at_;
  LoopClock::time_point builds_counted_;
};

}  // namespace manifold
