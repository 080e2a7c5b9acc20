#include "coordinator/waiting_reasons.h"

#include <chrono>

namespace manifold {
namespace {

std::string Seconds(std::chrono::milliseconds span) {
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(span).count()) + " s";
}

// "linux/amd64, linux/arm64 (emulated)": what the connected agents serve.
std::string ServedPlatforms(const PlatformSightings& sightings) {
  std::string list;
  for (const Platform& platform : sightings.served_now) {
    if (!list.empty()) list += ", ";
    list += platform.ToString();
    if (!sightings.served_natively_now.count(platform)) list += " (emulated)";
  }
  return list;
}

}  // namespace

std::string WaitingReason(const WaitingJob& job, const PlatformSightings& sightings,
                          const QueueRules& rules) {
  const Platform& platform = job.job.platform;
  if (sightings.served_natively_now.count(platform)) return "";
  const std::string name = platform.ToString();
  const std::string timeout = Seconds(rules.queue_timeout) + " (--queue-timeout)";
  if (!sightings.served_now.count(platform)) {
    return "no connected agent serves " + name + " (" +
           (sightings.served_now.empty() ? "no agent is connected"
                                         : "agents serve " + ServedPlatforms(sightings)) +
           "); the job fails if none connects within " + timeout;
  }
  // Only agents that emulate the platform are connected.
  switch (job.job.spec->emulation) {
    case EmulationPolicy::kNever:
      return "no connected agent serves " + name +
             " natively, and the build's --emulation never keeps it from the agents that "
             "emulate it; the job fails if no native one connects within " +
             timeout + ": start one, or build with --emulation fallback";
    case EmulationPolicy::kFallback:
      if (job.native_wait_over) return "";
      return "no connected agent serves " + name +
             " natively; an agent that emulates it may take the job once it has waited " +
             Seconds(rules.emulation_fallback_wait) + " (--emulation-fallback-wait)";
    case EmulationPolicy::kAllow:
      break;
  }
  return "";
}

std::map<uint64_t, std::string> ChangedWaitingReasons(const WaitingJobs& pending,
                                                      const PlatformSightings& sightings,
                                                      const QueueRules& rules) {
  std::map<uint64_t, std::string> changed;
  for (const auto& [job_id, waiting] : pending) {
    std::string reason = WaitingReason(waiting, sightings, rules);
    if (waiting.reason != reason) changed.emplace(job_id, std::move(reason));
  }
  return changed;
}

}  // namespace manifold
