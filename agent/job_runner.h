// JobRunner: carries out one assigned job on an agent, start to finish.
//
// Fetch the context from the coordinator (verifying its sha256), unpack it safely, run
// the builder for exactly the job's platform into an OCI layout, then push the layout to
// every target repository with manifold's own registry client (existing blobs skipped)
// and return the manifest's descriptor. Failures say whether a retry may help
// (Status::Unavailable: context fetch, registry trouble) or not (the build itself).
// One JobRunner per job, run on that job's own thread; the JobEvents sink it reports to
// must be thread-safe.
#pragma once

#include <atomic>
#include <string>
#include <string_view>

#include "agent/builder.h"
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
};

class JobRunner {
 public:
  JobRunner(Builder& builder, JobRunnerOptions options) : builder_(builder), options_(options) {}

  Result<ImageDescriptor> Run(const AssignMsg& assign, JobEvents& events,
                              const std::atomic<bool>* cancel);

 private:
  Result<ImageDescriptor> RunIn(const std::string& dir, const AssignMsg& assign, JobEvents& events,
                                const std::atomic<bool>* cancel);

  Builder& builder_;
  JobRunnerOptions options_;
};

}  // namespace manifold
