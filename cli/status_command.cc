#include "cli/status_command.h"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "cli/follow.h"
#include "cli/log_printer.h"

namespace manifold {
namespace {

std::string Join(const std::vector<std::string>& items, const std::string& separator) {
  std::string joined;
  for (const std::string& item : items) {
    if (!joined.empty()) joined += separator;
    joined += item;
  }
  return joined;
}

int Fail(std::ostream* err, const Status& status) {
  *err << "manifold: " << status.message() << "\n";
  err->flush();
  return 1;
}

}  // namespace

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
    if (!job.placement.empty()) text << "    Placed:   " << job.placement << "\n";
    if (!job.manifest_digest.empty()) text << "    Digest:   " << job.manifest_digest << "\n";
    if (!job.error.empty()) text << "    Error:    " << job.error << "\n";
  }
  return text.str();
}

namespace {

// Left-aligned columns two spaces apart, as `docker ps` prints them.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string text;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    text += line + "\n";
  }
  return text;
}

}  // namespace

std::string FormatDuration(std::chrono::seconds span) {
  int64_t s = std::max<int64_t>(span.count(), 0);
  char text[32];
  if (s < 60) {
    snprintf(text, sizeof(text), "%llds", static_cast<long long>(s));
  } else if (s < 3600) {
    snprintf(text, sizeof(text), "%lldm%02llds", static_cast<long long>(s / 60),
             static_cast<long long>(s % 60));
  } else {
    snprintf(text, sizeof(text), "%lldh%02lldm", static_cast<long long>(s / 3600),
             static_cast<long long>(s / 60 % 60));
  }
  return text;
}

std::optional<std::chrono::system_clock::time_point> ParseTimestamp(const std::string& text) {
  struct tm fields = {};
  char zone = 0;
  int consumed = 0;
  if (sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c%n", &fields.tm_year, &fields.tm_mon,
             &fields.tm_mday, &fields.tm_hour, &fields.tm_min, &fields.tm_sec, &zone,
             &consumed) != 7 ||
      zone != 'Z' || static_cast<size_t>(consumed) != text.size()) {
    return std::nullopt;
  }
  fields.tm_year -= 1900;
  fields.tm_mon -= 1;
  return std::chrono::system_clock::from_time_t(timegm(&fields));
}

namespace {

// The age column: the largest whole unit, as kubectl prints it ("45s", "12m", "3h", "2d").
std::string FormatAge(std::chrono::seconds age) {
  int64_t s = std::max<int64_t>(age.count(), 0);
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m";
  if (s < 86400) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

}  // namespace

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

std::string FormatAgentList(const std::vector<AgentInfo>& agents) {
  if (agents.empty()) return "no agents connected\n";
  std::vector<std::vector<std::string>> rows = {
      {"ID", "PLATFORMS", "SLOTS USED", "STATE", "LAST SEEN", "VERSION", "HOST"}};
  for (const AgentInfo& agent : agents) {
    rows.push_back({agent.id, Join(agent.platforms, ", "),
                    std::to_string(agent.busy) + "/" + std::to_string(agent.slots), agent.state,
                    std::to_string(agent.last_seen_ms_ago / 1000) + " s ago", agent.version,
                    agent.hostname});
  }
  return FormatTable(rows);
}

int RunAgents(const std::string& server, std::ostream* out, std::ostream* err) {
  Result<std::string> url = NormalizeServerUrl(server);
  if (!url.ok()) return Fail(err, url.status());
  Result<std::vector<AgentInfo>> agents = ApiClient(*url).ListAgents();
  if (!agents.ok()) return Fail(err, agents.status());
  *out << FormatAgentList(*agents);
  out->flush();
  return 0;
}

int RunStatus(const std::string& server, int64_t id, std::ostream* out, std::ostream* err) {
  Result<std::string> url = NormalizeServerUrl(server);
  if (!url.ok()) return Fail(err, url.status());
  Result<BuildInfo> build = ApiClient(*url).GetBuild(id);
  if (!build.ok()) return Fail(err, build.status());
  *out << FormatBuildStatus(*build);
  out->flush();
  return 0;
}

int RunList(const std::string& server, int limit, std::ostream* out, std::ostream* err) {
  Result<std::string> url = NormalizeServerUrl(server);
  if (!url.ok()) return Fail(err, url.status());
  Result<std::vector<BuildInfo>> builds = ApiClient(*url).ListBuilds(limit);
  if (!builds.ok()) return Fail(err, builds.status());
  *out << FormatBuildList(*builds, std::chrono::system_clock::now());
  out->flush();
  return 0;
}

int RunCancel(const std::string& server, int64_t id, std::ostream* out, std::ostream* err) {
  Result<std::string> url = NormalizeServerUrl(server);
  if (!url.ok()) return Fail(err, url.status());
  Result<BuildInfo> build = ApiClient(*url).CancelBuild(id);
  if (!build.ok()) return Fail(err, build.status());
  *out << "build " << id << " " << build->state << "\n";
  out->flush();
  return 0;
}

int RunLogs(const std::string& server, int64_t id, bool follow, std::chrono::milliseconds interval,
            std::ostream* out, std::ostream* err) {
  Result<std::string> url = NormalizeServerUrl(server);
  if (!url.ok()) return Fail(err, url.status());
  ApiClient api(*url);
  LogPrinter printer(out);
  if (!follow) {
    Status status = PrintAvailableLogs(api, id, &printer);
    return status.ok() ? 0 : Fail(err, status);
  }
  FollowOptions options;
  options.print_job_changes = false;  // logs only, as the command's name promises
  options.interval = interval;
  Result<BuildInfo> build = FollowBuild(api, id, options, &printer, err);
  return build.ok() ? 0 : Fail(err, build.status());
}

}  // namespace manifold
