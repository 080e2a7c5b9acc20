#include "agent/job_policy.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

namespace manifold {

namespace {

struct LimitInfo {
  JobLimit limit;
  std::string_view name;  // also the flags' stem: --job-<name>, --max-job-<name>
  uint64_t JobLimits::*field;
};

constexpr std::array<LimitInfo, 4> kLimits = {{
    {JobLimit::kMemory, "memory", &JobLimits::memory_bytes},
    {JobLimit::kCpus, "cpus", &JobLimits::cpu_millis},
    {JobLimit::kPids, "pids", &JobLimits::pids},
    {JobLimit::kDisk, "disk", &JobLimits::disk_bytes},
}};

const LimitInfo& InfoOf(JobLimit limit) {
  return *std::find_if(kLimits.begin(), kLimits.end(),
                       [limit](const LimitInfo& info) { return info.limit == limit; });
}

std::string Flag(const LimitInfo& info) { return "--job-" + std::string(info.name); }
std::string MaxFlag(const LimitInfo& info) { return "--max-job-" + std::string(info.name); }

// Parses "123" or "1.25" into value * scale, the fraction to at most `scale`'s precision.
Result<uint64_t> ParseScaled(std::string_view digits, uint64_t scale) {
  std::string_view whole = digits.substr(0, digits.find('.'));
  std::string_view fraction =
      whole.size() < digits.size() ? digits.substr(whole.size() + 1) : std::string_view();
  uint64_t value = 0;
  if (whole.empty() && fraction.empty()) return Status::InvalidArgument("no number");
  if (!whole.empty()) {
    auto [end, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), value);
    if (ec != std::errc() || end != whole.data() + whole.size()) {
      return Status::InvalidArgument("not a number");
    }
  }
  if (value > UINT64_MAX / scale) return Status::InvalidArgument("too large");
  value *= scale;
  unsigned __int128 numerator = 0;
  unsigned __int128 denominator = 1;
  for (char c : fraction) {
    if (!std::isdigit(static_cast<unsigned char>(c)))
      return Status::InvalidArgument("not a number");
    if (denominator > 1'000'000'000'000) return Status::InvalidArgument("too many decimals");
    numerator = numerator * 10 + static_cast<unsigned>(c - '0');
    denominator *= 10;
  }
  // Rounded down to the unit, but never to zero, which would mean "unlimited".
  value += static_cast<uint64_t>(numerator * scale / denominator);
  if (value == 0 && numerator != 0) return Status::InvalidArgument("too small");
  return value;
}

}  // namespace

JobPolicy DefaultJobPolicy() {
  JobPolicy policy;
  policy.defaults.pids = 4096;
  return policy;
}

std::string_view JobLimitName(JobLimit limit) { return InfoOf(limit).name; }

uint64_t LimitValue(const JobLimits& limits, JobLimit limit) { return limits.*InfoOf(limit).field; }

void SetLimitValue(JobLimits* limits, JobLimit limit, uint64_t value) {
  limits->*InfoOf(limit).field = value;
}

Result<uint64_t> ParseLimit(JobLimit limit, std::string_view text) {
  switch (limit) {
    case JobLimit::kCpus:
      return ParseCpus(text);
    case JobLimit::kPids: {
      Result<uint64_t> count = ParseScaled(text, 1);
      if (!count.ok() || text.find('.') != std::string_view::npos) {
        return Status::InvalidArgument("'" + std::string(text) + "' is not a number of processes");
      }
      return count;
    }
    case JobLimit::kMemory:
    case JobLimit::kDisk:
      break;
  }
  return ParseByteSize(text);
}

std::string FormatBytes(uint64_t bytes) {
  static constexpr std::array<std::string_view, 4> kUnits = {"KiB", "MiB", "GiB", "TiB"};
  std::string unit = "bytes";
  uint64_t whole = bytes;
  uint64_t tenths = 0;
  for (std::string_view next : kUnits) {
    if (bytes < 1024 || (bytes >> 10) == 0) break;
    tenths = (bytes % 1024) * 10 / 1024;
    bytes >>= 10;
    whole = bytes;
    unit = next;
  }
  return std::to_string(whole) + (tenths != 0 ? "." + std::to_string(tenths) : "") + " " + unit;
}

std::string FormatCpus(uint64_t cpu_millis) {
  std::string text = std::to_string(cpu_millis / 1000);
  if (uint64_t rest = cpu_millis % 1000; rest != 0) {
    std::string fraction = std::to_string(1000 + rest).substr(1);
    fraction.erase(fraction.find_last_not_of('0') + 1);
    text += "." + fraction;
  }
  return text;
}

std::string FormatLimit(JobLimit limit, uint64_t value) {
  switch (limit) {
    case JobLimit::kMemory:
    case JobLimit::kDisk:
      return FormatBytes(value);
    case JobLimit::kCpus:
      return FormatCpus(value) + (value == 1000 ? " CPU" : " CPUs");
    case JobLimit::kPids:
      return std::to_string(value) + (value == 1 ? " process" : " processes");
  }
  return std::to_string(value);
}

std::string DescribeLimits(const JobLimits& limits) {
  std::string text;
  for (const LimitInfo& info : kLimits) {
    uint64_t value = limits.*info.field;
    text += (text.empty() ? "" : ", ") + std::string(info.name) + " " +
            (value == 0 ? std::string("unlimited") : FormatLimit(info.limit, value));
  }
  return text;
}

std::string LimitReachedMessage(JobLimit limit, uint64_t value) {
  const LimitInfo& info = InfoOf(limit);
  std::string what;
  switch (limit) {
    case JobLimit::kMemory:
      what = "the job ran out of memory: a build step was killed at the job's memory limit";
      break;
    case JobLimit::kPids:
      what =
          "the job ran out of processes: a build step could not start a process at the "
          "job's process limit";
      break;
    case JobLimit::kDisk:
      what =
          "the job ran out of disk: its work dir (context and build files) is full at the "
          "job's disk limit";
      break;
    case JobLimit::kCpus:
      what = "the job reached its CPU limit";
      break;
  }
  return what + " of " + FormatLimit(limit, value) + "; ask for more with `manifold build " +
         Flag(info) + "` (up to the agent's " + MaxFlag(info) + "), or raise the agent's " +
         Flag(info) + " default";
}

Result<ResolvedJob> ResolveJob(const JobPolicy& policy, const std::string& network,
                               const std::vector<std::string>& entitlements,
                               const JobLimits& asked) {
  for (const std::string& entitlement : entitlements) {
    if (std::find(policy.allowed_entitlements.begin(), policy.allowed_entitlements.end(),
                  entitlement) == policy.allowed_entitlements.end()) {
      return Status::InvalidArgument("the build asks for the " + entitlement +
                                     " entitlement (--allow " + entitlement +
                                     "), which this agent does not allow; an operator who "
                                     "trusts every build it runs can start the agent with "
                                     "--allow-insecure-entitlement " +
                                     entitlement);
    }
  }
  if (network == "host") {
    if (std::find(entitlements.begin(), entitlements.end(), kNetworkHostEntitlement) ==
        entitlements.end()) {
      return Status::InvalidArgument(
          "--network host needs the network.host entitlement: add `--allow network.host` to "
          "the build (and the agent must run with --allow-insecure-entitlement network.host)");
    }
  } else if (!network.empty() && network != "none" && network != "default") {
    return Status::InvalidArgument("unknown --network '" + network +
                                   "': use default, none or host");
  }
  ResolvedJob resolved;
  resolved.network = network == "default" ? "" : network;
  for (const LimitInfo& info : kLimits) {
    uint64_t want = asked.*info.field;
    uint64_t maximum = policy.maximums.*info.field;
    if (want != 0 && maximum != 0 && want > maximum) {
      return Status::InvalidArgument(
          "the build asks for " + FormatLimit(info.limit, want) + " of " + std::string(info.name) +
          " (" + Flag(info) + "), over this agent's maximum of " +
          FormatLimit(info.limit, maximum) + "; ask for at most that, or raise the agent's " +
          MaxFlag(info));
    }
    resolved.limits.*info.field = want != 0 ? want : policy.defaults.*info.field;
  }
  return resolved;
}

Status CheckJobPolicy(const JobPolicy& policy) {
  for (const LimitInfo& info : kLimits) {
    uint64_t value = policy.defaults.*info.field;
    uint64_t maximum = policy.maximums.*info.field;
    if (maximum != 0 && (value == 0 || value > maximum)) {
      return Status::InvalidArgument(
          Flag(info) + " must be set and at most " + MaxFlag(info) + " (" +
          FormatLimit(info.limit, maximum) + "), got " +
          (value == 0 ? std::string("unlimited") : FormatLimit(info.limit, value)));
    }
  }
  for (const std::string& entitlement : policy.allowed_entitlements) {
    if (entitlement != kNetworkHostEntitlement) {
      return Status::InvalidArgument("--allow-insecure-entitlement " + entitlement +
                                     ": the agent knows only " +
                                     std::string(kNetworkHostEntitlement));
    }
  }
  return Status::Ok();
}

Result<uint64_t> ParseByteSize(std::string_view text) {
  std::string lower;
  for (char c : text) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string_view rest = lower;
  if (rest.size() > 1 && (rest.back() == 'b' || rest.back() == 'i')) rest.remove_suffix(1);
  uint64_t scale = 1;
  if (!rest.empty()) {
    static constexpr std::string_view kUnits = "kmgt";
    if (auto at = kUnits.find(rest.back()); at != std::string_view::npos) {
      scale = uint64_t{1} << (10 * (at + 1));
      rest.remove_suffix(1);
    }
  }
  Result<uint64_t> value = ParseScaled(rest, scale);
  if (!value.ok()) {
    return Status::InvalidArgument("'" + std::string(text) +
                                   "' is not a size: use bytes or a number with k, m, g or t, "
                                   "e.g. 512m or 4g");
  }
  return value;
}

Result<uint64_t> ParseCpus(std::string_view text) {
  Result<uint64_t> value = ParseScaled(text, 1000);
  if (!value.ok()) {
    return Status::InvalidArgument("'" + std::string(text) +
                                   "' is not a number of CPUs: use e.g. 2 or 0.5");
  }
  return value;
}

}  // namespace manifold
