// The loop's time rules for jobs: an attempt past its deadline, a job that may now go to an
// emulated agent, and a job no agent for its platform has served for too long.
//
// Pure functions over the loop's view with the time passed in, so each rule is tested in
// microseconds with made-up clocks; the loop carries out what they decide (store writes,
// cancels, metrics). Not thread-safe (the loop owns the view).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/platform.h"
#include "coordinator/job_view.h"

namespace manifold {

// The running attempts whose deadline has passed at `now`.
std::vector<RunningJob> ExpiredAttempts(const RunningJobs& running, LoopClock::time_point now);
// "timed out after 600 s": the job's error for an expired attempt.
std::string AttemptTimeoutError(const RunningJob& running);
// The build's error: "linux/arm64 timed out on agent a1 after 600 s (attempt 2)".
std::string AttemptTimeoutBuildError(const RunningJob& running);

// When connected, undrained agents last served each platform, natively or at all.
struct PlatformSightings {
  std::map<Platform, LoopClock::time_point> any;
  std::map<Platform, LoopClock::time_point> native;
  // The platforms served right now (filled by Note for this check).
  std::set<Platform> served_now, served_natively_now;
  // Records that an agent offering `offers` is connected and not draining at `now`.
  void Note(const std::vector<PlatformOffer>& offers, LoopClock::time_point now);
  // Starts a new check: nothing is served until noted again.
  void Reset() {
    served_now.clear();
    served_natively_now.clear();
  }
};

struct QueueRules {
  std::chrono::milliseconds queue_timeout{std::chrono::minutes(15)};
  std::chrono::milliseconds emulation_fallback_wait{std::chrono::seconds(60)};
  LoopClock::time_point started;  // a job waits at least this long after a (re)start
};

struct QueueExpiry {
  uint64_t job_id = 0;
  std::string error;  // for the build: what was missing and what to do
};

struct QueueCheck {
  bool fallback_opened = false;  // some job may now go to an emulated agent
  std::vector<QueueExpiry> expired;
};

// Marks the jobs that have waited long enough for a native agent (native_wait_over), and
// lists the jobs whose platform no suitable agent has served for the queue timeout.
QueueCheck CheckQueue(WaitingJobs& pending, const PlatformSightings& sightings,
                      const QueueRules& rules, LoopClock::time_point now);

}  // namespace manifold
