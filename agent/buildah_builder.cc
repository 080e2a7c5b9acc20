#include "agent/buildah_builder.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <utility>

#include "agent/buildah_cache.h"
#include "agent/dockerfile_bases.h"
#include "agent/tool_command.h"

namespace manifold {

BuildahBuilder::BuildahBuilder(CommandRunner& runner, std::string buildah_path, bool layers,
                               BuildahSandbox sandbox, ImageStore* store)
    : runner_(runner),
      buildah_path_(std::move(buildah_path)),
      layers_(layers),
      sandbox_(std::move(sandbox)),
      store_(store) {}

std::string BuildahBuilder::Name() const { return "buildah"; }

void BuildahBuilder::AppendJobArgs(const BuildRequest& request,
                                   std::vector<std::string>* argv) const {
  // A failed build's last container (its partial layer, a copy of the root file system)
  // is removed too; --layers keeps it otherwise. Without --layers buildah removes it.
  if (layers_) argv->push_back("--force-rm");
  if (request.cgroup_parent.empty()) return;
  // Every RUN step goes in a cgroup below the job's, which holds the job's limits. buildah
  // manages it itself (cgroupfs), not through systemd, which would want a slice of its own
  // making; on cgroup v2 the agent's cgroup is delegated to it for that.
  argv->insert(argv->end(),
               {"--cgroup-manager", "cgroupfs", "--cgroup-parent", request.cgroup_parent});
}

std::vector<std::string> BuildahBuilder::BudArgv(const BuildRequest& request) const {
  std::vector<std::string> argv = {buildah_path_, "bud",
                                   "--isolation", sandbox_.isolation,
                                   "--platform",  request.platform.ToString(),
                                   "-f",          request.dockerfile_path};
  if (!request.network.empty()) {
    argv.insert(argv.end(), {"--network", request.network});
  } else if (!sandbox_.network.empty()) {
    argv.insert(argv.end(),
                {"--cni-config-dir", sandbox_.cni_config_dir, "--network", sandbox_.network});
  }
  if (!sandbox_.userns.empty()) {
    argv.insert(argv.end(), {"--userns-uid-map", "0:" + sandbox_.userns, "--userns-gid-map",
                             "0:" + sandbox_.userns});
  }
  // Keeps each step's result as a cache image, so a rebuild on this agent (cache
  // affinity) skips unchanged steps.
  if (layers_) argv.push_back("--layers");
  AppendJobArgs(request, &argv);
  AppendBuildOptions(request, &argv);
  // No --annotation: buildah would keep them with its cache image, which later builds get
  // back with the annotations they did not ask for and without those they did. The job
  // runner sets request.annotations on the manifest in the layout instead.
  // buildx's --pull means "always"; buildah's bare --pull only pulls what is missing.
  if (request.pull) argv.push_back("--pull=always");
  argv.push_back("-t");
  argv.push_back(request.image_name);
  argv.push_back(request.context_dir);
  return argv;
}

Status BuildahBuilder::LoadRegistryCache(
    const std::string& dir, const std::string& cache_name,
    const std::function<void(std::string_view output)>& on_output,
    const std::atomic<bool>* cancel) {
  if (!layers_) return Builder::LoadRegistryCache(dir, cache_name, on_output, cancel);
  // Held until the last image has its name, so that no pass prunes what is being loaded.
  std::unique_ptr<ImageStore::Use> use;
  if (store_ != nullptr) use = store_->BeginJob({"localhost/" + cache_name + ":latest"});
  ImportCacheImages(runner_, buildah_path_, dir, cache_name, on_output, cancel);
  if (cancel != nullptr && *cancel) return Status::Canceled("canceled while loading");
  return Status::Ok();
}

Status BuildahBuilder::Build(const BuildRequest& request,
                             const std::function<void(std::string_view)>& on_output,
                             const std::atomic<bool>* cancel) {
  if (Status s = CheckBuildRequest(request); !s.ok()) return s;
  const std::string platform = request.platform.ToString();
  auto run_step = [&](const std::vector<std::string>& argv, const std::string& what) {
    return RunBuildStep(runner_, CommandSpec{argv, {}, ""}, what, on_output, cancel);
  };

  std::vector<std::string> bud = BudArgv(request);
  if (!request.cgroup_parent.empty()) {
    auto isolation = std::find(bud.begin(), bud.end(), "--isolation");
    if (isolation != bud.end() && std::next(isolation) != bud.end() &&
        *std::next(isolation) == "chroot") {
      on_output(
          "manifold: warning: RUN steps run with --isolation chroot on this agent, outside "
          "any cgroup, so the job's memory, CPU and process limits are not enforced\n");
    }
  }
  std::unique_ptr<ImageStore::Use> use;
  if (store_ != nullptr) {
    // Held from before the base images are pulled until the cache image has its name.
    std::ifstream file(request.dockerfile_path, std::ios::binary);
    std::string dockerfile((std::istreambuf_iterator<char>(file)),
                           std::istreambuf_iterator<char>());
    std::vector<std::string> names = DockerfileBases(dockerfile, request.build_args);
    if (!request.cache_name.empty()) names.push_back("localhost/" + request.cache_name + ":latest");
    use = store_->BeginJob(std::move(names));
  }
  if (layers_ && !request.cache_import_dir.empty()) {
    ImportCacheImages(runner_, buildah_path_, request.cache_import_dir, request.cache_name,
                      on_output, cancel);
  }
  std::map<std::string, std::string> env;
  if (!request.tmp_dir.empty()) env["TMPDIR"] = request.tmp_dir;
  StepImages steps;
  Status built = RunBud(
      CommandSpec{bud, env, ""}, "buildah bud for " + platform,
      [&](std::string_view output) {
        steps.Add(output);
        on_output(output);
      },
      cancel, &use);
  if (!built.ok()) return built;
  if (layers_ && !request.cache_export_dir.empty()) {
    Status exported = ExportCacheImages(runner_, buildah_path_, steps.Ids(request.cache_all_stages),
                                        request.cache_export_dir, on_output);
    if (!exported.ok()) {
      on_output("manifold: warning: the registry cache is not written: " + exported.message() +
                "\n");
    }
  }

  Status pushed =
      run_step({buildah_path_, "push", request.image_name, "oci:" + request.layout_dir + ":latest"},
               "buildah push of " + platform + " image to OCI layout '" + request.layout_dir + "'");

  // The image now lives in the layout (or the push failed and the job is over); either
  // way its job name in local storage is garbage. Under its cache name the image and the
  // intermediate images of --layers stay: they are the layer cache (removing the last name
  // would remove them too).
  if (pushed.ok() && !request.cache_name.empty()) {
    RunHousekeepingCommand(
        runner_,
        CommandSpec{{buildah_path_, "tag", request.image_name, request.cache_name}, {}, ""},
        on_output);
  }
  RunHousekeepingCommand(runner_, CommandSpec{{buildah_path_, "rmi", request.image_name}, {}, ""},
                         on_output);

  return pushed;
}

// A FROM image whose registry this host cannot reach is a setting of the agent's, which
// the registry's own error ("pinging container registry registry-1.docker.io: ... no
// such host") does not name.
Status ExplainUnreachableRegistry(const Status& built) {
  const std::string& message = built.message();
  const std::string pinging = "pinging container registry ";
  const size_t at = message.find(pinging);
  // A failed bud is Internal (not retryable); a cancel or a start failure stays as it is.
  if (built.code() != Status::Code::kInternal || at == std::string::npos) return built;
  const size_t start = at + pinging.size();
  const std::string registry = message.substr(start, message.find(": ", start) - start);
  return Status::Internal(message + ". This agent cannot reach the registry " + registry +
                          " to pull a FROM image: give its buildah a registries.conf "
                          "(CONTAINERS_REGISTRIES_CONF) with a [[registry.mirror]] this host "
                          "can reach, or let it reach " +
                          registry + " (README, \"Running on real hosts\")");
}

Status BuildahBuilder::RunBud(const CommandSpec& bud, const std::string& what,
                              const std::function<void(std::string_view)>& on_output,
                              const std::atomic<bool>* cancel,
                              std::unique_ptr<ImageStore::Use>* use) {
  if (store_ == nullptr) {
    return ExplainUnreachableRegistry(RunBuildStep(runner_, bud, what, on_output, cancel));
  }
  Status built;
  std::optional<uint64_t> free_when_reached;
  {
    FloorWatch watch(*store_, cancel);
    built = ExplainUnreachableRegistry(RunBuildStep(runner_, bud, what, on_output, watch.cancel()));
    if (watch.reached() && !(cancel != nullptr && *cancel)) {
      free_when_reached = watch.free_when_reached();
    }
  }
  if (!free_when_reached) return built;
  // The stopped step's working container (its partial layer) goes before the job's
  // result is reported; the job's hold on its images goes first, as a pass removes
  // containers only while no job runs (with other jobs running, once they end).
  use->reset();
  store_->PruneNow();
  return Status::Internal(store_->FloorReachedMessage(*free_when_reached));
}

Status BuildahBuilder::CheckAvailable(CommandRunner& runner, const std::string& buildah_path) {
  return RunCheckCommand(runner, CommandSpec{{buildah_path, "version"}, {}, ""}, "buildah",
                         "install buildah 1.28 or later, or give its full path");
}

}  // namespace manifold
