// JobPolicy: what an agent lets one build job use, and the check of a job's asks against it.
//
// The agent has a default and a maximum per limit (--job-memory, --max-job-memory, ...) and
// the entitlements it allows (--allow-insecure-entitlement network.host, as buildkitd). A
// job's asks (AssignMsg network, entitlements, limits) are resolved against the policy
// before its build starts: unset limits take the default, asks over a maximum and host
// networking without the entitlement are refused with an error that names the agent flag
// that would allow it. A refusal is a build failure (not retryable): the same agent, or any
// other with the same policy, would refuse again. Pure functions on plain values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/job_limits.h"
#include "common/status.h"

namespace manifold {

// The limits, one for each field of JobLimits, with their names and flags.
enum class JobLimit { kMemory, kCpus, kPids, kDisk };

// The entitlement a build needs for `--network host`.
inline constexpr std::string_view kNetworkHostEntitlement = "network.host";

struct JobPolicy {
  JobLimits defaults;  // for what a job leaves unset; zero: unlimited
  JobLimits maximums;  // what a job may ask for at most; zero: no maximum
  // Entitlements jobs may ask for (--allow-insecure-entitlement).
  std::vector<std::string> allowed_entitlements;
};

// The agent's defaults when no flag is given: at most 4096 processes per job, nothing else
// limited.
JobPolicy DefaultJobPolicy();

// InvalidArgument naming the flag when the policy contradicts itself (a default over its
// maximum, or unlimited under a maximum) or allows an entitlement the agent does not know.
Status CheckJobPolicy(const JobPolicy& policy);

struct ResolvedJob {
  JobLimits limits;
  std::string network;  // "", "none" or "host"
};

// The limits and network a job's build runs with, or InvalidArgument naming what the job
// asked, the agent's maximum and the flag that raises it (over a maximum; an entitlement
// or network the agent does not allow; an unknown network or entitlement).
Result<ResolvedJob> ResolveJob(const JobPolicy& policy, const std::string& network,
                               const std::vector<std::string>& entitlements,
                               const JobLimits& asked);

// Sizes as flags take them: "512m", "4g", "1073741824", "1.5g" (k, m, g, t are powers of
// 1024; a trailing "b" or "i" is allowed: "512mb", "4gi"). InvalidArgument otherwise.
Result<uint64_t> ParseByteSize(std::string_view text);
// CPUs as flags take them: "2", "0.5", "1.25" (to thousandths), as thousandths of a CPU.
Result<uint64_t> ParseCpus(std::string_view text);
// "512 MiB", "4 GiB", "1536 bytes": for messages.
std::string FormatBytes(uint64_t bytes);
// "1.5": for messages.
std::string FormatCpus(uint64_t cpu_millis);

// "memory", "cpus", "pids", "disk".
std::string_view JobLimitName(JobLimit limit);
// The message for a job that ran into `limit` at `value`: what happened and which flags
// raise it (the build's own and the agent's).
std::string LimitReachedMessage(JobLimit limit, uint64_t value);
// One field of JobLimits.
uint64_t LimitValue(const JobLimits& limits, JobLimit limit);
void SetLimitValue(JobLimits* limits, JobLimit limit, uint64_t value);
// A flag's value for `limit`: a size (memory, disk), CPUs or a count of processes.
Result<uint64_t> ParseLimit(JobLimit limit, std::string_view text);

// "memory 512 MiB, cpus unlimited, pids 4096, disk 10 GiB": for a job's log.
std::string DescribeLimits(const JobLimits& limits);
// `value` of `limit` as a person reads it: "512 MiB", "1.5 CPUs", "64 processes".
std::string FormatLimit(JobLimit limit, uint64_t value);

}  // namespace manifold
