// Why a job waits in the queue when no agent it may go to serves its platform: recorded as
// the job's placement while it is pending, so `manifold status`, the API and `manifold
// build` (which prints it as it follows) say at once what is missing and for how long the
// job will wait, instead of leaving "waiting for an agent" alone for the whole
// --queue-timeout.
//
// Pure functions over the loop's view (the waiting jobs and the platforms the connected,
// undrained agents serve, as CheckQueue sees them), so the texts and when they change are
// tested without a store, sockets or a clock; the loop records a reason only when it
// changes. Not thread-safe (the loop owns the view).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "coordinator/job_timeouts.h"
#include "coordinator/job_view.h"

namespace manifold {

// Why `job` waits given what the connected agents serve now, e.g. "no connected agent
// serves linux/arm/v7 (agents serve linux/amd64, linux/arm64 (emulated)); the job fails if
// none connects within 900 s (--queue-timeout)", or that only agents emulating its platform
// are connected, which its --emulation rules out or lets in after a wait; "" when an agent
// it may go to serves its platform and it waits only for a free slot.
std::string WaitingReason(const WaitingJob& job, const PlatformSightings& sightings,
                          const QueueRules& rules);

// The waiting jobs whose reason is not the one last recorded (WaitingJob::reason), each
// with its new one ("" clears it).
std::map<uint64_t, std::string> ChangedWaitingReasons(const WaitingJobs& pending,
                                                      const PlatformSightings& sightings,
                                                      const QueueRules& rules);

}  // namespace manifold
