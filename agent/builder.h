// Builder: the backend that turns a build context and a Dockerfile into an OCI image
// layout for exactly one platform.
//
// Backends (buildah, BuildKit, docker) only build; pushing from the layout to the
// registry is the agent's own job, so every backend hands over the same thing: a
// directory in the OCI image layout format. The agent picks the backend by Name().
//
// Thread-safety: a Builder may run several Build calls at once from different threads
// (one per agent slot), each with its own BuildRequest; on_output is called on the
// calling thread only.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "common/job_limits.h"
#include "common/platform.h"
#include "common/status.h"

namespace manifold {

struct BuildRequest {
  Platform platform;
  std::string context_dir;
  // A file on disk; it may lie outside context_dir.
  std::string dockerfile_path;
  std::map<std::string, std::string> build_args;
  // The Dockerfile stage to build; empty builds the last one.
  std::string target;
  // Labels for the image config, and annotations for the image manifest.
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  // Use no cached layer; pull every base image even when a local copy exists.
  bool no_cache = false;
  bool pull = false;
  // Build secrets: id -> a file holding the bytes, mounted for RUN --mount=type=secret,id=ID
  // and never written into the image.
  std::map<std::string, std::string> secret_files;
  // A local image name unique per job attempt, so parallel builds never share a name.
  std::string image_name;
  // Where the OCI image layout is written; must not exist yet or be empty.
  std::string layout_dir;
  // A name the built image keeps in local storage after the build, so the backend's layer
  // cache survives for the next build of the same repository and platform (the
  // coordinator sends such builds back to this agent). Empty: keep nothing.
  std::string cache_name;
  // The build tool's TMPDIR, where buildah keeps RUN --mount=type=cache contents
  // (CacheMounts: one per repository and platform); empty: the agent's own.
  std::string tmp_dir;
  // RUN steps' network: "" (the backend's sandbox network: private, NAT'd, with the host
  // and link-local addresses denied), "none", or "host" (the agent checked the entitlement).
  std::string network;
  // Limits the agent resolved for this job (its defaults filled in, its maximums checked);
  // zero fields are unlimited.
  JobLimits limits;
  // The cgroup (relative to the cgroup file system's root) under which the backend puts its
  // build steps, so that the job's limits, set on a cgroup above it, hold; empty: none.
  std::string cgroup_parent;
  // The registry cache (agent/cache_transfer.h), for backends that KeepRegistryCache():
  // an OCI layout whose images (ref names cache-1, cache-2... in build order) go into the
  // layer cache before the build; empty or absent: none. And a layout (absent) to write
  // this build's step images to after it, in build order: those of the last stage
  // (cache_all_stages false, buildx's mode=min) or of every stage (mode=max); empty: none.
  std::string cache_import_dir;
  std::string cache_export_dir;
  bool cache_all_stages = false;
};

class Builder {
 public:
  virtual ~Builder() = default;

  // Short backend name for logs and agent reports: "buildah".
  virtual std::string Name() const = 0;

  // Whether this backend imports and exports the registry cache (the request's
  // cache_import_dir and cache_export_dir); those that do not ignore them.
  virtual bool KeepsRegistryCache() const { return false; }

  // Loads the images of the registry cache layout at `dir` (as FetchRegistryCache wrote
  // it) into the backend's layer cache outside any build, the last one named `cache_name`
  // (agent/cache_transfer.h CacheImageName), as a build's import would; `cancel` (may be
  // null) stops it (Status::Canceled). Only for backends that keep the registry cache;
  // the others say they do not.
  virtual Status LoadRegistryCache(const std::string& dir, const std::string& cache_name,
                                   const std::function<void(std::string_view output)>& on_output,
                                   const std::atomic<bool>* cancel) {
    (void)dir;
    (void)cache_name;
    (void)on_output;
    (void)cancel;
    return Status::FailedPrecondition("the " + Name() + " backend keeps no registry cache");
  }

  // Builds request.platform. On success layout_dir holds an OCI image layout with exactly
  // one image manifest, for that platform. A build that fails (the Dockerfile, a RUN step)
  // is Status::Internal, which is not retryable, with a message naming the platform and
  // the exit status; a cancel gives Status::Canceled. Build output goes to on_output as
  // it arrives, with a "manifold: ..." line before each command the backend runs.
  virtual Status Build(const BuildRequest& request,
                       const std::function<void(std::string_view output)>& on_output,
                       const std::atomic<bool>* cancel) = 0;
};

}  // namespace manifold
