// BuildahBuilder: the Builder backend that runs buildah.
//
// One Build is three commands: `buildah bud` for exactly the requested platform, `buildah
// push` of the result into an OCI image layout, and a best-effort `buildah rmi` so that
// the agent's container storage does not grow with every job. buildah finds its storage
// the usual way (CONTAINERS_STORAGE_CONF or the default storage.conf of the agent user).
// Builds use chroot isolation, which works as root on hosts and inside containers alike.
//
// Thread-safety: Build and CheckAvailable may run concurrently from several threads as
// long as the CommandRunner allows it (SubprocessRunner does); buildah itself locks its
// storage between processes. The runner must outlive the builder.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/builder.h"
#include "agent/command_runner.h"
#include "common/status.h"

namespace manifold {

class BuildahBuilder : public Builder {
 public:
  // `layers`: keep each step as a cache image (buildah --layers) for later builds. Only
  // for an agent of one platform: buildah 1.28 may take a step cached for one platform
  // (FROM scratch) as the same step of another.
  explicit BuildahBuilder(CommandRunner& runner, std::string buildah_path = "buildah",
                          bool layers = true);

  std::string Name() const override;

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

  CommandRunner& runner_;
  std::string buildah_path_;
  bool layers_;
};

}  // namespace manifold
