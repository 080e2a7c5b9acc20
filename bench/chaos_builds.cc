#include "bench/chaos_builds.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/strings.h"

namespace manifold::bench {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

using Rows = std::vector<std::vector<std::string>>;

// Each build's RUN step differs by BUILD, so every build makes images of its own.
constexpr char kDockerfile[] =
    "FROM busybox\n"
    "ARG BUILD=0\n"
    "RUN echo \"chaos build $BUILD on $(uname -m)\" > /etc/chaos-build\n";

// One query through psql against the farm's database; rows of fields split by '\x1f'.
Result<Rows> Query(const test::Farm& farm, const std::string& sql) {
  test::CommandResult result =
      test::RunCommand({"psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-F", "\x1f", "-d",
                        farm.database_url(), "-c", sql},
                       seconds(60));
  if (result.exit_code != 0) return Status::Unavailable("psql: " + result.output);
  Rows rows;
  std::istringstream lines(result.output);
  for (std::string line; std::getline(lines, line);) {
    std::vector<std::string> fields;
    std::istringstream parts(line);
    for (std::string field; std::getline(parts, field, '\x1f');) fields.push_back(field);
    if (!line.empty() && line.back() == '\x1f') fields.push_back("");
    rows.push_back(fields);
  }
  return rows;
}

// The one number a count query answers, -1 if it failed.
long Count(const test::Farm& farm, const std::string& sql) {
  Result<Rows> rows = Query(farm, sql);
  if (!rows.ok() || rows->empty() || rows->front().empty()) return -1;
  return std::stol(rows->front().front());
}

// What `manifold build`'s output says: its build id, and its outcome and digest.
void ReadCliOutput(const std::string& output, int exit_code, ChaosBuild* build) {
  std::istringstream lines(output);
  std::string last;
  for (std::string line; std::getline(lines, line);) {
    unsigned long long id = 0;
    if (build->id == 0 && sscanf(line.c_str(), "build %llu submitted", &id) == 1) build->id = id;
    if (!line.empty()) last = line;
  }
  build->cli_exit = exit_code;
  const std::string prefix = "manifold: build " + std::to_string(build->id);
  if (exit_code == 0) {
    build->cli_outcome = "succeeded";
    build->cli_digest = last;
  } else if (last.rfind(prefix + " failed", 0) == 0) {
    build->cli_outcome = "failed";
  } else if (last.rfind(prefix + " was canceled", 0) == 0) {
    build->cli_outcome = "canceled";
  } else {
    build->cli_outcome = last.empty() ? "no output" : last;
  }
}

// `manifold status ID`'s State: and Index: lines.
void ReadStatus(const test::Farm& farm, ChaosBuild* build) {
  test::CommandResult status = farm.Manifold({"status", std::to_string(build->id)}, seconds(60));
  build->status_state = status.exit_code == 0 ? "" : "error: " + status.output;
  std::istringstream lines(status.output);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("State:", 0) == 0) build->status_state = line.substr(line.find_last_of(' ') + 1);
    if (line.rfind("Index:", 0) == 0) {
      std::istringstream words(line.substr(6));
      words >> build->status_index;
    }
  }
}

}  // namespace

ChaosBuilds::ChaosBuilds(const test::Farm* farm, std::vector<std::string> platforms,
                         std::string dir, uint64_t seed)
    : farm_(farm), platforms_(std::move(platforms)), dir_(std::move(dir)), seed_(seed) {
  std::filesystem::create_directories(dir_ + "/context");
  std::ofstream(dir_ + "/context/Dockerfile") << kDockerfile;
}

void ChaosBuilds::Submit(const std::string& tag) {
  ChaosBuild build;
  build.number = static_cast<int>(builds_.size()) + 1;
  build.tag = tag;
  builds_.push_back(build);
  clis_.emplace_back();
  Start(builds_.size() - 1);
}

void ChaosBuilds::Start(size_t i) {
  ChaosBuild& build = builds_[i];
  ++build.submissions;
  clis_[i].process = std::make_unique<test::Subprocess>();
  const std::string number = std::to_string(build.number);
  Status started = clis_[i].process->Start(
      {test::BinaryDir() + "/cli/manifold", "--server", farm_->server_url(), "build", "--platform",
       Join(platforms_, ","), "-t", build.tag, "--build-arg", "BUILD=" + number,
       "--idempotency-key", "chaos-" + std::to_string(seed_) + "-" + number, "--progress", "plain",
       dir_ + "/context"},
      {}, dir_ + "/cli-" + number + ".log");
  if (!started.ok()) {
    build.cli_outcome = "could not run the CLI: " + started.message();
    clis_[i].done = true;
  }
}

bool ChaosBuilds::Poll(double now, double deadline) {
  bool all_done = true;
  for (size_t i = 0; i < clis_.size(); ++i) {
    Cli& cli = clis_[i];
    if (cli.done) continue;
    int exit_code = cli.process->Wait(milliseconds(0));
    if (exit_code < 0 && now < deadline) {
      all_done = false;
      continue;
    }
    if (exit_code < 0) cli.process->Stop();
    ReadCliOutput(test::ReadFileTail(cli.process->log_file(), 1 << 20), exit_code, &builds_[i]);
    if (builds_[i].id == 0 && exit_code > 0 && now < deadline) {
      all_done = false;
      if (cli.retry_at == 0) cli.retry_at = now + 2;
      if (now >= cli.retry_at) {
        cli.retry_at = 0;
        Start(i);
      }
      continue;
    }
    cli.done = true;
  }
  return all_done;
}

Status ChaosBuilds::ReadOutcomes() {
  Result<Rows> rows = Query(*farm_,
                            "SELECT id, state, index_digest, translate(error, E'\\n\\x1f', '  '), "
                            "extract(epoch FROM created_at), "
                            "coalesce(extract(epoch FROM finished_at), 0) FROM builds");
  if (!rows.ok()) return rows.status();
  for (ChaosBuild& build : builds_) {
    for (const std::vector<std::string>& row : *rows) {
      if (row.size() < 6 || row[0] != std::to_string(build.id)) continue;
      build.state = row[1];
      build.index_digest = row[2];
      build.error = row[3];
      build.created = std::stod(row[4]);
      bool ended =
          build.state == "succeeded" || build.state == "failed" || build.state == "canceled";
      build.finished = ended ? std::stod(row[5]) : 0;
    }
    if (build.id != 0) ReadStatus(*farm_, &build);
  }
  return Status::Ok();
}

bool AllBuildsEnded(const test::Farm& farm) {
  return Count(farm, "SELECT count(*) FROM builds WHERE state IN ('queued','running','merging')") ==
         0;
}

bool SomeJobPushing(const test::Farm& farm) {
  return Count(farm, "SELECT count(*) FROM jobs WHERE state = 'pushing'") > 0;
}

std::vector<std::string> BusyAgents(const test::Farm& farm) {
  Result<Rows> rows = Query(farm,
                            "SELECT DISTINCT agent_id FROM jobs WHERE state IN "
                            "('assigned', 'building', 'pushing') ORDER BY 1");
  std::vector<std::string> agents;
  for (const std::vector<std::string>& row : rows.ok() ? *rows : Rows{}) {
    if (!row.empty() && !row[0].empty()) agents.push_back(row[0]);
  }
  return agents;
}

Result<std::vector<std::string>> JobsWithTwoResults(const test::Farm& farm) {
  Result<Rows> rows =
      Query(farm,
            "SELECT j.build_id, e.job_id, j.platform, string_agg(e.state || ' of attempt ' || "
            "e.attempt || ' by ' || coalesce(e.agent_id, '?'), ', ' ORDER BY e.id) "
            "FROM job_events e JOIN jobs j ON j.id = e.job_id "
            "WHERE e.state IN ('succeeded', 'failed', 'timed_out') "
            "GROUP BY j.build_id, e.job_id, j.platform HAVING count(*) > 1");
  if (!rows.ok()) return rows.status();
  std::vector<std::string> lines;
  for (const std::vector<std::string>& row : *rows) {
    if (row.size() < 4) continue;
    lines.push_back("build " + row[0] + " job " + row[1] + " (" + row[2] + "): " + row[3]);
  }
  return lines;
}

}  // namespace manifold::bench
