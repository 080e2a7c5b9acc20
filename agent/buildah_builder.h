// BuildahBuilder: the Builder backend that runs buildah.
//
// One Build is three commands: `buildah bud` for exactly the requested platform, `buildah
// push` of the result into an OCI image layout, and a best-effort `buildah rmi` so that
// the agent's container storage does not grow with every job. With an ImageStore, the
// images the build uses (its bases and cache image) are held for its duration, and a
// `buildah bud` that takes the storage's file system below the agent's free-space floor
// is stopped: the job fails naming --min-free-disk, its leftovers removed. buildah finds its
// storage the usual way (CONTAINERS_STORAGE_CONF or the default storage.conf of the agent user).
// `buildah bud` runs with the request's tmp_dir as its TMPDIR, where buildah keeps the
// contents of RUN --mount=type=cache (CacheMounts).
// RUN steps run under `--isolation oci` by default: runc gives each one its own PID,
// mount, IPC, UTS and network namespaces, so it sees neither the host's processes nor its
// files (the agent's keys, work dir and other jobs' contexts) nor its loopback. Its
// network is the agent's SandboxNetwork (BuildRequest.network ""), none or host. Chroot
// isolation stays as an agent setting for benchmarks and trusted Dockerfiles only: its
// steps share the host's PID and network namespaces.
//
// User namespaces (BuildahSandbox.userns) are off by default: with the vfs storage driver
// buildah 1.28 chowns a copy of every layer for the mapping but leaves the rootfs's top
// directory owned by the host's root, mode 0555, so the step's root cannot create a
// top-level directory (`RUN mkdir /app` fails, and so does every image without /run,
// where buildah mounts .containerenv). It also costs: vfs copies and chowns the image for
// the mapping, and a trivial RUN on a 315 MB image took about 29 s mapped against 17 s
// unmapped (13.5 s under chroot; 2 vCPU, loaded). Hosts on overlay may turn it on.
//
// Thread-safety: Build and CheckAvailable may run concurrently from several threads as
// long as the CommandRunner allows it (SubprocessRunner does); buildah itself locks its
// storage between processes. The runner must outlive the builder.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/builder.h"
#include "agent/command_runner.h"
#include "agent/image_store.h"
#include "common/status.h"

namespace manifold {

// How RUN steps are isolated.
struct BuildahSandbox {
  // "oci" (runc, the sandbox) or "chroot" (unsafe for untrusted Dockerfiles).
  std::string isolation = "oci";
  // The sandbox network for BuildRequest.network "" (SandboxNetwork's config dir and
  // name); empty: buildah's own private network, without the agent's deny rules.
  std::string cni_config_dir;
  std::string network;
  // "HOSTID:LENGTH": the step's uids and gids 0..LENGTH-1 are the host's HOSTID...;
  // empty: no user namespace.
  std::string userns;
};

class BuildahBuilder : public Builder {
 public:
  // `layers`: keep each step as a cache image (buildah --layers) for later builds. Only
  // for an agent of one platform: buildah 1.28 may take a step cached for one platform
  // (FROM scratch) as the same step of another. `store` (not owned, may be null) bounds the
  // container storage.
  explicit BuildahBuilder(CommandRunner& runner, std::string buildah_path = "buildah",
                          bool layers = true, BuildahSandbox sandbox = {},
                          ImageStore* store = nullptr);

  std::string Name() const override;
  // With --layers only: the cache is loaded into, and read from, the layer cache.
  bool KeepsRegistryCache() const override { return layers_; }
  Status LoadRegistryCache(const std::string& dir, const std::string& cache_name,
                           const std::function<void(std::string_view output)>& on_output,
                           const std::atomic<bool>* cancel) override;

  Status Build(const BuildRequest& request,
               const std::function<void(std::string_view output)>& on_output,
               const std::atomic<bool>* cancel) override;

  // Runs `buildah version`; an error saying how to fix it when buildah is missing or
  // does not run. Meant for agent start-up, so that a broken host is refused early
  // rather than failing every job it is given.
  static Status CheckAvailable(CommandRunner& runner, const std::string& buildah_path = "buildah");

  // The argv of the `buildah bud` command for request (exposed for tests and logs).
  std::vector<std::string> BudArgv(const BuildRequest& request) const;

 private:
  // The job's own arguments: its cgroup, the removal of a failed build's containers.
  void AppendJobArgs(const BuildRequest& request, std::vector<std::string>* argv) const;
  // Runs `buildah bud` under a FloorWatch when there is a store.
  Status RunBud(const CommandSpec& bud, const std::string& what,
                const std::function<void(std::string_view)>& on_output,
                const std::atomic<bool>* cancel, std::unique_ptr<ImageStore::Use>* use);

  CommandRunner& runner_;
  std::string buildah_path_;
  bool layers_;
  BuildahSandbox sandbox_;
  ImageStore* store_;
};

}  // namespace manifold
