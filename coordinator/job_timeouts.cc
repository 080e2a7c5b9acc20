#include "coordinator/job_timeouts.h"

#include <algorithm>

namespace manifold {

std::vector<RunningJob> ExpiredAttempts(const RunningJobs& running, LoopClock::time_point now) {
  std::vector<RunningJob> expired;
  for (const auto& [job_id, job] : running) {
    if (now > job.deadline) expired.push_back(job);
  }
  return expired;
}

namespace {
std::string TimeoutLimit(const RunningJob& running) {
  return running.timeout_s > 0 ? std::to_string(running.timeout_s) + " s" : "its job timeout";
}
}  // namespace

std::string AttemptTimeoutError(const RunningJob& running) {
  return "timed out after " + TimeoutLimit(running);
}

std::string AttemptTimeoutBuildError(const RunningJob& running) {
  return running.platform.ToString() + " timed out on agent " + running.agent_id + " after " +
         TimeoutLimit(running) + " (attempt " + std::to_string(running.job.attempt) + ")";
}

void PlatformSightings::Note(const std::vector<PlatformOffer>& offers, LoopClock::time_point now) {
  for (const PlatformOffer& offer : offers) {
    served_now.insert(offer.platform);
    any[offer.platform] = now;
    if (!offer.emulated) {
      served_natively_now.insert(offer.platform);
      native[offer.platform] = now;
    }
  }
}

QueueCheck CheckQueue(WaitingJobs& pending, const PlatformSightings& sightings,
                      const QueueRules& rules, LoopClock::time_point now) {
  QueueCheck check;
  const std::string waited =
      std::to_string(
          std::chrono::duration_cast<std::chrono::seconds>(rules.queue_timeout).count()) +
      " s";
  for (auto& [job_id, waiting] : pending) {
    const Platform& platform = waiting.job.platform;
    const bool native_only = waiting.job.spec->emulation == EmulationPolicy::kNever;
    if (!waiting.native_wait_over && now - waiting.since >= rules.emulation_fallback_wait) {
      waiting.native_wait_over = true;
      check.fallback_opened = true;
    }
    if ((native_only ? sightings.served_natively_now : sightings.served_now).count(platform)) {
      continue;
    }
    LoopClock::time_point reference = std::max(waiting.since, rules.started);
    const auto& seen_map = native_only ? sightings.native : sightings.any;
    auto seen = seen_map.find(platform);
    if (seen != seen_map.end()) reference = std::max(reference, seen->second);
    if (now - reference <= rules.queue_timeout) continue;
    const std::string name = platform.ToString();
    check.expired.push_back(
        {job_id, native_only && sightings.served_now.count(platform)
                     ? name + ": no native agent for this platform was connected for " + waited +
                           ", and the build's --emulation never rules out the emulated ones; "
                           "start a native agent or build with --emulation fallback"
                     : name + ": no agent serving this platform was connected for " + waited +
                           "; start one (manifold-agent --platform " + name +
                           ") or drop the platform"});
  }
  return check;
}

}  // namespace manifold
