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
#include <vector>

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
  std::string note;   // e.g. "scheduled amd64-2 was idle"
};

// What the injector asks the farm before it strikes.
struct FarmProbes {
  std::function<bool()> job_pushing;                      // some job pushes now
  std::function<std::vector<std::string>()> busy_agents;  // agents running a job, by name
};

class FaultInjector {
 public:
  FaultInjector(test::Farm* farm, FarmProbes probes) : farm_(farm), probes_(std::move(probes)) {}

  // Does `fault`. An agent fault hits an agent that runs a job, so that it cuts a build:
  // the scheduled agent if it runs one, else one that does (waiting up to 10 s for one),
  // else the scheduled agent; the record's fault names the agent hit. A registry restart
  // waits up to 30 s for a job that pushes.
  InjectedFault Inject(int number, const Fault& fault);

 private:
  std::string AgentToHit(const Fault& fault, std::string* note) const;
  // Takes `name` down (kill: SIGKILL; else SIGTERM, which an agent drains for its grace),
  // waits `hold`, and starts it again.
  void Restart(const std::string& name, bool kill, std::chrono::milliseconds hold,
               InjectedFault* record);

  test::Farm* farm_;
  FarmProbes probes_;
};

}  // namespace manifold::bench
