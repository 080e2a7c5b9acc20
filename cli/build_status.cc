#include "cli/build_status.h"

#include <sstream>

#include "cli/format.h"
#include "common/strings.h"

namespace manifold {

std::string FormatBuildStatus(const BuildInfo& build) {
  std::ostringstream text;
  text << "Build:     " << build.id << "\n";
  text << "State:     " << build.state << "\n";
  text << "Platforms: " << Join(build.platforms, ", ") << "\n";
  text << "Tags:      " << Join(build.tags, ", ") << "\n";
  if (!build.context.empty()) text << "Context:   " << build.context << "\n";
  if (!build.index_digest.empty()) {
    text << "Index:     " << build.index_digest;
    if (!build.index_media_type.empty()) text << " (" << build.index_media_type << ")";
    text << "\n";
  }
  if (!build.error.empty()) text << "Error:     " << build.error << "\n";
  if (!build.created_at.empty()) text << "Created:   " << build.created_at << "\n";
  if (!build.updated_at.empty()) text << "Updated:   " << build.updated_at << "\n";
  if (!build.jobs.empty()) text << "\nJobs:\n";
  for (const JobInfo& job : build.jobs) {
    text << "  " << job.platform << "\n";
    text << "    State:    " << job.state << "\n";
    text << "    Attempt:  " << job.attempt << "\n";
    text << "    Agent:    " << (job.agent.empty() ? "none yet" : job.agent)
         << (job.emulated ? " (emulated)" : "") << "\n";
    if (!job.placement.empty()) {
      // Until an agent takes the job, its placement says why it waits.
      text << (job.state == "pending" || job.agent.empty() ? "    Waiting:  " : "    Placed:   ")
           << job.placement << "\n";
    }
    if (!job.manifest_digest.empty()) text << "    Digest:   " << job.manifest_digest << "\n";
    if (!job.error.empty()) text << "    Error:    " << job.error << "\n";
  }
  return text.str();
}

std::string FormatBuildList(const std::vector<BuildInfo>& builds,
                            std::chrono::system_clock::time_point now) {
  if (builds.empty()) return "no builds yet\n";
  std::vector<std::vector<std::string>> rows = {
      {"ID", "STATE", "PLATFORMS", "TAGS", "DURATION", "AGE"}};
  for (const BuildInfo& build : builds) {
    auto created = ParseTimestamp(build.created_at);
    auto updated = ParseTimestamp(build.updated_at);
    std::string duration = "-", age = "-";
    if (created) {
      auto end = build.IsFinal() ? updated.value_or(*created) : now;
      duration = FormatDuration(std::chrono::duration_cast<std::chrono::seconds>(end - *created));
      age = FormatAge(std::chrono::duration_cast<std::chrono::seconds>(now - *created));
    }
    rows.push_back({std::to_string(build.id), build.state, Join(build.platforms, ","),
                    Join(build.tags, ","), duration, age});
  }
  return FormatTable(rows);
}

int RunStatus(const std::string& server, int64_t id, std::ostream* out, std::ostream* err) {
  Result<std::string> url = NormalizeServerUrl(server);
  if (!url.ok()) return PrintFailure(err, url.status());
  Result<BuildInfo> build = ApiClient(*url).GetBuild(id);
  if (!build.ok()) return PrintFailure(err, build.status());
  *out << FormatBuildStatus(*build);
  out->flush();
  return 0;
}

int RunList(const std::string& server, int limit, std::ostream* out, std::ostream* err) {
  Result<std::string> url = NormalizeServerUrl(server);
  if (!url.ok()) return PrintFailure(err, url.status());
  Result<std::vector<BuildInfo>> builds = ApiClient(*url).ListBuilds(limit);
  if (!builds.ok()) return PrintFailure(err, builds.status());
  *out << FormatBuildList(*builds, std::chrono::system_clock::now());
  out->flush();
  return 0;
}

int RunCancel(const std::string& server, int64_t id, std::ostream* out, std::ostream* err) {
  Result<std::string> url = NormalizeServerUrl(server);
  if (!url.ok()) return PrintFailure(err, url.status());
  Result<BuildInfo> build = ApiClient(*url).CancelBuild(id);
  if (!build.ok()) return PrintFailure(err, build.status());
  *out << "build " << id << " " << build->state << "\n";
  out->flush();
  return 0;
}

}  // namespace manifold
