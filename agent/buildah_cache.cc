#include "agent/buildah_cache.h"

#include <filesystem>

#include "agent/tool_command.h"
#include "common/layout.h"

namespace manifold {
namespace {

bool IsHex(std::string_view text) {
  return !text.empty() && text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// "[2/3] STEP 1/4: FROM ...": the first step of a stage of a multi-stage build.
bool StartsStage(std::string_view line) {
  if (line.empty() || line.front() != '[') return false;
  size_t close = line.find("] STEP 1/");
  return close != std::string_view::npos && line.find(' ') > close;
}

}  // namespace

void StepImages::Add(std::string_view output) {
  partial_.append(output);
  size_t start = 0;
  for (size_t newline; (newline = partial_.find('\n', start)) != std::string::npos;
       start = newline + 1) {
    Line(std::string_view(partial_).substr(start, newline - start));
  }
  partial_.erase(0, start);
}

void StepImages::Line(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (StartsStage(line)) {
    if (!stages_.back().empty()) stages_.emplace_back();
    return;
  }
  constexpr std::string_view kArrow = "--> ";
  if (line.substr(0, kArrow.size()) != kArrow) return;
  std::string_view id = line.substr(kArrow.size());
  if (!IsHex(id)) return;  // "--> Using cache ...", "--> Pushing cache ..."
  std::vector<std::string>& ids = stages_.back();
  // COMMIT repeats the last step's id.
  if (ids.empty() || ids.back() != id) ids.emplace_back(id);
}

std::vector<std::string> StepImages::Ids(bool all_stages) const {
  if (!all_stages) return stages_.back();
  std::vector<std::string> ids;
  for (const auto& stage : stages_) ids.insert(ids.end(), stage.begin(), stage.end());
  return ids;
}

void ImportCacheImages(CommandRunner& runner, const std::string& buildah_path,
                       const std::string& dir, const std::string& cache_name,
                       const std::function<void(std::string_view)>& on_output,
                       const std::atomic<bool>* cancel) {
  Result<std::vector<std::string>> names = LayoutRefNames(dir);
  if (!names.ok() || names->empty()) return;
  // buildah names an image pulled from oci:PATH "localhost/PATH", which must be a valid
  // (lowercase) name: pulled from the parent directory, PATH is the layout's own name.
  const std::filesystem::path path(dir);
  const std::string parent = path.parent_path().string();
  const std::string layout = path.filename().string();
  const std::string pulled_name = "localhost/" + layout;
  for (const std::string& name : *names) {
    Status pulled = RunBuildStep(
        runner, CommandSpec{{buildah_path, "pull", "oci:" + layout + ":" + name}, {}, parent},
        "buildah pull of registry cache image " + name, on_output, cancel);
    if (!pulled.ok()) {
      on_output("manifold: warning: registry cache only partly loaded: " + pulled.message() + "\n");
      break;
    }
  }
  if (cache_name.empty() || layout == cache_name) return;  // the pulls' name is the one
  RunHousekeepingCommand(
      runner, CommandSpec{{buildah_path, "tag", pulled_name, cache_name}, {}, ""}, on_output);
  RunHousekeepingCommand(runner, CommandSpec{{buildah_path, "rmi", pulled_name}, {}, ""},
                         on_output);
}

Status ExportCacheImages(CommandRunner& runner, const std::string& buildah_path,
                         const std::vector<std::string>& ids, const std::string& dir,
                         const std::function<void(std::string_view)>& on_output) {
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string ref = "cache-" + std::to_string(i + 1);
    Status pushed = RunBuildStep(
        runner, CommandSpec{{buildah_path, "push", ids[i], "oci:" + dir + ":" + ref}, {}, ""},
        "buildah push of step image " + ids[i] + " to the registry cache layout", on_output,
        nullptr);
    if (!pushed.ok()) {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);  // a partial cache is not pushed
      return pushed;
    }
  }
  return Status::Ok();
}

}  // namespace manifold
