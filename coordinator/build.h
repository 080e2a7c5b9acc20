// The coordinator's domain: a build, its jobs (one per platform), their records and
// events, and what recording a job's result did to its build.
//
// Every layer of the coordinator speaks these types: the API parses requests into a
// BuildSpec, the loop queues QueuedJobs and applies ResultOutcomes, the merger reads
// BuildRecords, and the store persists them. Plain values, safe to copy between threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/job_limits.h"
#include "common/messages.h"
#include "common/platform.h"
#include "coordinator/emulation.h"

namespace manifold {

// What a client asked to build; fixed once the build is submitted.
struct BuildSpec {
  std::vector<Platform> platforms;
  std::vector<std::string> tags;  // full references, each parsed at the API boundary
  std::string context_digest;
  std::string dockerfile;
  std::string dockerfile_path = "Dockerfile";
  std::map<std::string, std::string> build_args;
  std::string target;
  std::map<std::string, std::string> labels;
  bool no_cache = false;
  bool pull = false;  // pull base images always, as buildx --pull
  // Annotations for each platform's manifest, and for the index the merger pushes.
  std::map<std::string, std::string> manifest_annotations;
  std::map<std::string, std::string> index_annotations;
  // Where the sources come from and at which commit; the index's
  // org.opencontainers.image.source and .revision unless index_annotations name them.
  std::string source;
  std::string revision;
  uint32_t job_timeout_s = 3600;  // an attempt running longer ends as timed_out
  EmulationPolicy emulation = EmulationPolicy::kFallback;
  // The ids of the build's secrets (--secret). Their bytes are never part of the spec: the
  // coordinator holds them in memory only (Coordinator::Enqueue).
  std::vector<std::string> secret_ids;
  // RUN steps' network: "" (the agent's sandbox network, buildx's "default"), "none" or
  // "host"; the entitlements asked for (--allow: "network.host"); and the job limits
  // (--job-memory...), zero fields taking the agent's defaults. Checked at submit; the
  // agent checks them again against what it allows.
  std::string network;
  std::vector<std::string> entitlements;
  JobLimits limits;
  // --cache-from and --cache-to (type=registry): cache refs as given, "REPO[:TAG]"; each
  // platform's job uses its own repository under them (common/registry_cache.h). No ref at
  // all: the coordinator's --cache-repo-template, if set, gives both.
  std::vector<std::string> cache_from;
  std::string cache_to;
  std::string cache_mode = "min";  // of cache_to: "min" or "max"
};

// One state change of a job, from job_events: the job's history across attempts.
struct JobEvent {
  uint32_t attempt = 0;
  std::string state;  // pending|assigned|building|pushing|retry|succeeded|failed|timed_out|canceled
  std::string agent_id;
  std::string at;  // RFC 3339, UTC
  std::string detail;
};

struct JobRecord {
  uint64_t id = 0;
  uint64_t build_id = 0;
  Platform platform;
  std::string state;  // pending|assigned|building|pushing|succeeded|failed|timed_out|canceled
  uint32_t attempt = 0;
  uint32_t retries = 0;  // requeues after faults outside the build (job_rules.h)
  std::string agent_id;
  bool emulated = false;
  std::string placement;  // why the scheduler chose the agent: "native, least loaded"
  ImageDescriptor manifest;
  std::string error;
  int64_t deadline_unix_ms = 0;  // of the current attempt; 0 when not running
  std::vector<JobEvent> events;  // filled by GetBuild
};

struct BuildRecord {
  uint64_t id = 0;
  BuildSpec spec;
  std::string state;  // queued|running|merging|succeeded|failed|canceled
  std::string index_digest;
  std::string index_media_type;
  std::string error;
  std::string created_at;  // RFC 3339, UTC
  std::string updated_at;
  // The log alone was deleted, by a coordinator from before --retention deleted whole builds.
  bool logs_pruned = false;
  // When every job had succeeded and merging began; the index's created annotation, so a
  // merge repeated after a restart pushes the same bytes. "" before then.
  std::string merge_started_at;
  std::vector<JobRecord> jobs;
};

// A pending job with what an agent needs to build it.
struct QueuedJob {
  uint64_t job_id = 0;
  uint64_t build_id = 0;
  Platform platform;
  std::shared_ptr<const BuildSpec> spec;
};

struct LogChunkRecord {
  int64_t seq = 0;
  std::string platform;
  uint32_t attempt = 0;
  std::string data;
  uint64_t cut_before = 0;  // bytes of the job's output cut just before this chunk (log_cap.h)
};

// What appending a chunk of build output did.
struct LogAppend {
  bool current = false;    // false: the attempt is not the job's on that agent (fenced)
  uint64_t cut_bytes = 0;  // bytes of the job's output cut to keep it within its cap
};

// One scheduling decision for AssignJobs.
struct JobAssignment {
  uint64_t job_id = 0;
  std::string agent_id;
  bool emulated = false;
  std::string placement;  // why the scheduler chose the agent
};

// What a job result did to its build.
struct ResultOutcome {
  bool current = false;  // false: the (job, attempt, agent) was stale; nothing changed
  uint64_t build_id = 0;
  // Every job of the build has succeeded: the build, now merging, with its jobs, read in
  // the transaction that recorded the result, so the merge starts without another read.
  std::optional<BuildRecord> to_merge;
  bool build_failed = false;          // this result failed the build
  std::vector<JobRecord> to_cancel;   // running jobs of the failed build, now canceled
  std::optional<QueuedJob> requeued;  // a retryable failure put the job back in the queue
};

}  // namespace manifold
