// JobRunner: carries out one assigned job on an agent, start to finish.
//
// Resolve the job's limits and network against the agent's JobPolicy (a refusal fails the
// build before anything is fetched), put its work dir on a file system of its disk limit
// and give it a cgroup with its memory, CPU and process limits (JobDisk, JobCgroups). Fetch
// the context from the coordinator (verifying its sha256), unpack it safely, run
// the builder for exactly the job's platform into an OCI layout, then push the layout to
// every target repository with manifold's own registry client (existing blobs skipped)
// and return the manifest's descriptor. With a registry cache (assign.cache), its images are
// fetched before the build and the build's step images pushed after the image
// (agent/cache_transfer.h), for a backend that keeps one. A build that fails at one of its limits
// says so, naming the flag that raises it. Failures say whether a retry may help
// (Status::Unavailable: context fetch, registry trouble) or not (the build itself).
// One JobRunner per job, run on that job's own thread; the JobEvents sink it reports to
// must be thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "agent/builder.h"
#include "agent/cache_mounts.h"
#include "agent/held_caches.h"
#include "agent/job_cgroup.h"
#include "agent/job_disk.h"
#include "agent/job_policy.h"
#include "agent/metrics.h"
#include "common/messages.h"
#include "common/registry.h"
#include "common/status.h"

namespace manifold {

class JobEvents {
 public:
  virtual ~JobEvents() = default;
  virtual void Phase(const JobRef& job, JobPhase phase) = 0;
  virtual void Output(const JobRef& job, std::string_view text) = 0;
};

struct JobRunnerOptions {
  std::string work_dir;  // a per-job directory is made (and removed) under it
  uint64_t max_context_bytes = 2ull << 30;
  // Build and push timings, bytes, registry requests and cache steps; not owned, may be null.
  AgentMetrics* metrics = nullptr;
  // Where build secrets are written while a build runs: a memory file system, so that they
  // never reach a disk; the job's own directory when it does not exist.
  std::string secrets_dir = "/dev/shm";
  RegistryOptions registry_options;  // for every push (insecure registries, ...)
  // CAs trusted beyond the system's when fetching build contexts from the coordinator's
  // API (--ca-file): its PEM text, and the file's name for error messages.
  std::string api_ca_pem;
  std::string api_ca_file;
  // The agent's defaults, maximums and allowed entitlements; a job's disk limit is enforced
  // here (JobDisk), its memory, CPU and process limits through `cgroups`.
  JobPolicy policy;
  // Not owned; null: no cgroups are made and memory, CPU and process limits are not
  // enforced (a backend that cannot place its steps in a cgroup).
  JobCgroups* cgroups = nullptr;
  // Not owned; null: RUN --mount=type=cache contents stay wherever the builder keeps them.
  CacheMounts* cache_mounts = nullptr;
  // Not owned; null: the registry cache is pulled before every build that names one.
  HeldCaches* held_caches = nullptr;
};

class JobRunner {
 public:
  JobRunner(Builder& builder, JobRunnerOptions options) : builder_(builder), options_(options) {}

  Result<ImageDescriptor> Run(const AssignMsg& assign, JobEvents& events,
                              const std::atomic<bool>* cancel);
  // After Run: the cache ref the job's registry cache was pushed to; empty if none.
  const std::string& cache_pushed() const { return cache_pushed_; }

 private:
  Result<ImageDescriptor> RunIn(const std::string& dir, const AssignMsg& assign,
                                const ResolvedJob& resolved, const JobCgroup* cgroup,
                                const JobDisk* disk, JobEvents& events,
                                const std::atomic<bool>* cancel);

  // Sets up the request's registry cache: fetches assign.cache.from for the builder to
  // load, and names where it writes its step images for assign.cache.to.
  void PrepareRegistryCache(const AssignMsg& assign, const std::string& dir, BuildRequest* request,
                            const std::function<void(const std::string&)>& say);
  // Notes, once the build succeeded, the registry cache images its store now holds.
  void NoteHeldCaches() const;
  // Pushes what the builder wrote for assign.cache.to; a failure is only reported.
  void PushCache(const AssignMsg& assign, const BuildRequest& request,
                 const std::function<void(const std::string&)>& say);

  Builder& builder_;
  JobRunnerOptions options_;
  std::string cache_pushed_;
  std::map<std::string, std::vector<std::string>> cache_loaded_;  // by ref, of this job
};

}  // namespace manifold
