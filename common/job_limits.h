// JobLimits: the resources one build job may use on an agent, and its RUN steps' network.
//
// A build asks for limits (`manifold build --job-memory ...`); the agent fills what the
// build left unset from its own defaults and refuses what is over its maximums, before the
// build starts. Zero means "not set". Plain values, no locking.
#pragma once

#include <cstdint>

namespace manifold {

struct JobLimits {
  uint64_t memory_bytes = 0;
  uint64_t cpu_millis = 0;  // thousandths of a CPU: 1500 is one and a half CPUs
  uint64_t pids = 0;        // processes (and threads) alive at once
  uint64_t disk_bytes = 0;  // the job's work dir: its context and build files
  bool operator==(const JobLimits&) const = default;
};

}  // namespace manifold
