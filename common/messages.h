// The agent protocol's messages as plain C++ values.
//
// schema/protocol.capnp defines the wire form; common/wire.h converts between the two.
// Programs only ever see these structs, so a malformed frame is rejected whole at the
// boundary instead of throwing half-way through handling it. Plain values.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "common/job_limits.h"
#include "common/platform.h"

namespace manifold {

inline constexpr uint32_t kProtocolVersion = 1;

struct JobRef {
  uint64_t job_id = 0;
  uint32_t attempt = 0;
  bool operator==(const JobRef&) const = default;
  auto operator<=>(const JobRef&) const = default;
};

struct ImageDescriptor {
  std::string media_type;
  std::string digest;
  uint64_t size = 0;
  bool operator==(const ImageDescriptor&) const = default;
};

// ---- agent to coordinator ----

struct HelloMsg {
  uint32_t protocol_version = kProtocolVersion;
  std::string agent_id;
  std::string version;
  std::string hostname;
  std::vector<PlatformOffer> platforms;
  uint32_t slots = 1;
  std::map<std::string, std::string> labels;
  std::vector<JobRef> running_jobs;
  bool operator==(const HelloMsg&) const = default;
};

struct HeartbeatMsg {
  std::vector<JobRef> running_jobs;
  // Assigns the agent has read since its last welcome: the coordinator counts an
  // assignment lost only once this shows it arrived (reconcile.h).
  uint64_t assigns_received = 0;
  bool operator==(const HeartbeatMsg&) const = default;
};

enum class JobPhase { kAccepted, kBuilding, kPushing };

struct JobUpdateMsg {
  JobRef job;
  JobPhase phase = JobPhase::kAccepted;
  bool operator==(const JobUpdateMsg&) const = default;
};

struct LogChunkMsg {
  JobRef job;
  uint64_t seq = 0;
  std::string data;
  bool operator==(const LogChunkMsg&) const = default;
};

struct JobResultMsg {
  JobRef job;
  bool succeeded = false;
  ImageDescriptor image;  // when succeeded
  std::string error;      // when not
  bool retryable = false;
  bool refused = false;  // no free slot: the job was never started
  // The repository this job's registry cache was pushed to; empty if none.
  std::string cache_pushed{};
  bool operator==(const JobResultMsg&) const = default;
};

struct DrainingMsg {
  bool operator==(const DrainingMsg&) const = default;
};
struct GoodbyeMsg {
  bool operator==(const GoodbyeMsg&) const = default;
};

using AgentMessage = std::variant<HelloMsg, HeartbeatMsg, JobUpdateMsg, LogChunkMsg, JobResultMsg,
                                  DrainingMsg, GoodbyeMsg>;

// ---- coordinator to agent ----

// A registry cache an agent that has just started loads before any build needs it.
struct WarmStartCache {
  std::string repository;  // the image repository it is the cache of ("registry/team/app")
  Platform platform;
  std::string cache_ref;  // the platform's cache ref, as builds read it
  bool operator==(const WarmStartCache&) const = default;
};

struct WelcomeMsg {
  std::string session_id;
  uint32_t heartbeat_interval_ms = 2000;
  std::vector<WarmStartCache> warm_start_caches;  // newest push first
  uint32_t cache_ttl_seconds = 0;                 // 0: no limit
  bool operator==(const WelcomeMsg&) const = default;
};

// The build's registry cache for one job's platform, resolved by the coordinator to that
// platform's own repositories (so platforms never overwrite each other's cache).
struct RegistryCacheSpec {
  std::vector<std::string> from;  // repositories to read cache from, in order
  std::string to;                 // repository to write cache to; empty: none
  std::string mode = "min";       // "min" (the final stage's steps) or "max" (every stage's)
  uint32_t ttl_seconds = 0;       // cache older than this is not used; 0: no limit
  bool operator==(const RegistryCacheSpec&) const = default;
};

struct AssignMsg {
  JobRef job;
  uint64_t build_id = 0;
  Platform platform;
  std::string context_digest;
  std::string context_url;
  std::string dockerfile;
  std::string dockerfile_path;
  std::map<std::string, std::string> build_args;
  std::string target;
  std::vector<std::string> repositories;  // "registry/repository" names to push to
  // --label (image config) and --annotation (the platform's image manifest).
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  // --no-cache: use no cached layer; --pull: pull base images even when present.
  bool no_cache = false;
  bool pull = false;
  // --secret: id -> bytes. Only ever in memory: never logged, stored or written to the image.
  std::map<std::string, std::string> secrets;
  // --network: "" (the agent's sandbox network), "none" or "host"; --allow: entitlements
  // the build asks for ("network.host"), each of which the agent must allow.
  std::string network;
  std::vector<std::string> entitlements;
  // --job-memory, --job-cpus, --job-pids, --job-disk; unset fields take the agent's defaults.
  JobLimits limits;
  RegistryCacheSpec cache{};
  bool operator==(const AssignMsg&) const = default;
};

struct CancelMsg {
  JobRef job;
  bool operator==(const CancelMsg&) const = default;
};
struct AckMsg {
  JobRef job;
  bool operator==(const AckMsg&) const = default;
};
struct RejectMsg {
  std::string reason;
  bool fatal = false;  // false: the session is unknown (coordinator restarted), say hello again
  bool operator==(const RejectMsg&) const = default;
};

struct DrainMsg {
  bool operator==(const DrainMsg&) const = default;
};

// Back-pressure on build output: hold log chunks (each job's output kept bounded to its
// head and tail) until told to resume. Never holds heartbeats, phases or results.
struct LogFlowMsg {
  bool hold = false;
  bool operator==(const LogFlowMsg&) const = default;
};

using CoordinatorMessage =
    std::variant<WelcomeMsg, AssignMsg, CancelMsg, AckMsg, RejectMsg, DrainMsg, LogFlowMsg>;

// A short name for logs and counters: "hello", "jobResult", ...
const char* MessageName(const AgentMessage& message);
const char* MessageName(const CoordinatorMessage& message);

}  // namespace manifold
