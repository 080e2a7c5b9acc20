// FaultInjector: does one fault of a chaos schedule (bench/chaos_schedule.h) to a real farm
// (tests/support/farm.h, ops/farm.sh) and brings the target back: an agent killed and
// started again, paused and continued, drained by SIGTERM and replaced by a fresh process;
// the coordinator killed and started; PostgreSQL stopped and started; the registry stopped
// while a job pushes and started. Each fault's record says when it began and ended and
// whether the farm's script did what it was asked. Used from one thread.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "bench/chaos_schedule.h"
#include "tests/support/farm.h"

namespace manifold::bench {

// Wall-clock seconds since the epoch, the clock PostgreSQL's timestamps are compared with.
double EpochSeconds();

struct InjectedFault {
  int number = 0;  // 1, 2, ... in the order of the schedule
  Fault fault;
  double began = 0;   // EpochSeconds() when the target was hit
  double ended = 0;   // when it was back (running, continued, restarted)
  std::string error;  // empty when the farm did what was asked
  std::string note;   // e.g. "no job was pushing; restarted anyway"
};

class FaultInjector {
 public:
  // `pushing` tells whether some job is pushing now (a registry restart waits for one).
  FaultInjector(test::Farm* farm, std::function<bool()> pushing)
      : farm_(farm), pushing_(std::move(pushing)) {}

  InjectedFault Inject(int number, const Fault& fault);

 private:
  // Takes `name` down (kill: SIGKILL; else SIGTERM, which an agent drains for its grace),
  // waits `hold`, and starts it again.
  void Restart(const std::string& name, bool kill, std::chrono::milliseconds hold,
               InjectedFault* record);

  test::Farm* farm_;
  std::function<bool()> pushing_;
};

}  // namespace manifold::bench
