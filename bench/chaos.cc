// chaos: two-platform builds on a real farm while faults hit it, then the invariants.
//
// It brings up a farm with ops/farm.sh (PostgreSQL, docker-registry, the coordinator and
// --agents-per-platform buildah agents for linux/amd64 and for linux/arm64, the latter
// under QEMU), submits --builds small two-platform builds with the real `manifold build`
// CLI, one every --interval seconds (every fourth one to a shared tag), and meanwhile does
// --faults faults from the schedule of --seed (bench/chaos_schedule.h) one after another.
// Once every build has ended (or --timeout passed after the last submission) it checks
// the invariants (bench/chaos_invariants.h), prints them with the figures, and exits 1 if
// any failed. Example:
//   build/bench/chaos --seed 7 --builds 200 --faults 100 --agents-per-platform 3
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include "bench/chaos_injector.h"
#include "bench/chaos_invariants.h"
#include "bench/chaos_schedule.h"
#include "common/registry.h"
#include "tests/support/farm.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace manifold::bench {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

struct Settings {
  uint64_t seed = 0;  // 0: from the clock (printed, so the run can be repeated)
  int builds = 12;
  int faults = 6;
  int agents_per_platform = 2;
  double interval_s = 4;
  double calm_s = 20;
  int timeout_s = 600;
};

const std::vector<std::string> kPlatforms = {"linux/amd64", "linux/arm64"};
constexpr int kHeartbeatMs = 500;
constexpr int kMissedHeartbeats = 3;

// Each build's RUN step differs by BUILD, so every build makes its own images.
constexpr char kDockerfile[] =
    "FROM busybox\n"
    "ARG BUILD=0\n"
    "RUN echo \"chaos build $BUILD on $(uname -m)\" > /etc/chaos-build\n";

void Say(const std::string& line) {
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  printf("chaos: %s\n", line.c_str());
  fflush(stdout);
}

std::string Fixed(double value) {
  char text[32];
  snprintf(text, sizeof text, "%.1f", value);
  return text;
}

// One query through psql against the farm's database; rows of fields split by '\x1f'.
Result<std::vector<std::vector<std::string>>> Query(const test::Farm& farm,
                                                    const std::string& sql) {
  test::CommandResult result =
      test::RunCommand({"psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-F", "\x1f", "-d",
                        farm.database_url(), "-c", sql},
                       seconds(60));
  if (result.exit_code != 0) return Status::Unavailable("psql: " + result.output);
  std::vector<std::vector<std::string>> rows;
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
  std::istringstream lines(status.output);
  build->status_state = status.exit_code == 0 ? "" : "error: " + status.output;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("State:", 0) == 0) build->status_state = line.substr(line.find_last_of(' ') + 1);
    if (line.rfind("Index:", 0) == 0) {
      std::istringstream words(line.substr(6));
      words >> build->status_index;
    }
  }
}

// The database's row of each build the CLI submitted.
Status ReadBuildRows(const test::Farm& farm, std::vector<ChaosBuild>* builds) {
  Result<std::vector<std::vector<std::string>>> rows =
      Query(farm,
            "SELECT id, state, index_digest, translate(error, E'\\n\\x1f', '  '), "
            "extract(epoch FROM created_at), coalesce(extract(epoch FROM finished_at), 0) "
            "FROM builds ORDER BY id");
  if (!rows.ok()) return rows.status();
  for (ChaosBuild& build : *builds) {
    for (const std::vector<std::string>& row : *rows) {
      if (row.size() < 6 || std::stoull(row[0]) != build.id) continue;
      build.state = row[1];
      build.index_digest = row[2];
      build.error = row[3];
      build.created = std::stod(row[4]);
      build.finished =
          build.state == "succeeded" || build.state == "failed" || build.state == "canceled"
              ? std::stod(row[5])
              : 0;
    }
  }
  return Status::Ok();
}

bool AllEnded(const test::Farm& farm) {
  Result<std::vector<std::vector<std::string>>> rows =
      Query(farm, "SELECT count(*) FROM builds WHERE state IN ('queued','running','merging')");
  return rows.ok() && !rows->empty() && (*rows)[0][0] == "0";
}

Result<std::vector<std::string>> JobsWithTwoResults(const test::Farm& farm) {
  Result<std::vector<std::vector<std::string>>> rows =
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

int Run(const Settings& settings) {
  test::FarmOptions options;
  std::vector<std::string> agents;
  for (const std::string& platform : kPlatforms) {
    std::string arch = platform.substr(platform.find('/') + 1);
    for (int i = 1; i <= settings.agents_per_platform; ++i) {
      agents.push_back(arch + "-" + std::to_string(i));
      options.agents.push_back(agents.back() + ":" + platform);
    }
  }
  options.env = {{"MANIFOLD_HEARTBEAT_INTERVAL_MS", std::to_string(kHeartbeatMs)},
                 {"MANIFOLD_MISSED_HEARTBEATS", std::to_string(kMissedHeartbeats)},
                 {"MANIFOLD_DRAIN_GRACE", "3"},
                 {"MANIFOLD_FARM_STOP_TIMEOUT", "30"}};
  ScheduleOptions schedule_options;
  schedule_options.seed = settings.seed;
  schedule_options.faults = settings.faults;
  // The first --calm seconds have no fault, so that some builds show how long one takes.
  const double fault_offset_s = std::min(settings.calm_s, settings.builds * settings.interval_s);
  schedule_options.span = milliseconds(static_cast<int64_t>(
      std::max(settings.builds * settings.interval_s - fault_offset_s, 1.0) * 1000));
  schedule_options.agents = agents;
  schedule_options.liveness_limit = milliseconds(kHeartbeatMs * kMissedHeartbeats);
  const std::vector<Fault> schedule = ChaosSchedule(schedule_options);
  Say("seed " + std::to_string(settings.seed) + ": " + std::to_string(settings.builds) +
      " builds, " + std::to_string(schedule.size()) + " faults, " + std::to_string(agents.size()) +
      " agents");

  test::Farm farm(options);
  if (Status up = farm.Up(); !up.ok()) {
    Say("the farm did not come up: " + up.message());
    return 2;
  }
  test::TempDir scratch("manifold-chaos");
  std::ofstream(scratch.path() + "/Dockerfile") << kDockerfile;

  const double start = EpochSeconds();
  std::vector<InjectedFault> injected;
  std::thread fault_thread([&] {
    FaultInjector injector(&farm, [&] {
      Result<std::vector<std::vector<std::string>>> rows =
          Query(farm, "SELECT count(*) FROM jobs WHERE state = 'pushing'");
      return rows.ok() && !rows->empty() && (*rows)[0][0] != "0";
    });
    for (size_t i = 0; i < schedule.size(); ++i) {
      const Fault& fault = schedule[i];
      std::this_thread::sleep_for(std::chrono::duration<double>(
          start + fault_offset_s + fault.at.count() / 1000.0 - EpochSeconds()));
      InjectedFault record = injector.Inject(static_cast<int>(i + 1), fault);
      Say("fault #" + std::to_string(record.number) + " at +" + Fixed(record.began - start) +
          " s: " + FaultKindName(fault.kind) + " " + fault.target + " (back after " +
          Fixed(record.ended - record.began) + " s)" +
          (record.note.empty() ? "" : "; " + record.note) +
          (record.error.empty() ? "" : "; FAILED: " + record.error));
      injected.push_back(record);
    }
  });

  // Each build's `manifold build`. One that exits before the coordinator took the build (it
  // or its database was down) is run again with the same idempotency key: a submission
  // during an outage fails at once for any user, and the run is about what the farm does
  // with the builds it took.
  std::vector<ChaosBuild> builds(settings.builds);
  std::vector<std::unique_ptr<test::Subprocess>> clis(settings.builds);
  std::vector<double> next_try(settings.builds, 0);
  std::vector<bool> done(settings.builds, false);
  auto run_cli = [&](int i) {
    ChaosBuild& build = builds[i];
    ++build.submissions;
    clis[i] = std::make_unique<test::Subprocess>();
    Status started = clis[i]->Start(
        {test::BinaryDir() + "/cli/manifold", "--server", farm.server_url(), "build", "--platform",
         "linux/amd64,linux/arm64", "-t", build.tag, "--build-arg",
         "BUILD=" + std::to_string(build.number), "--idempotency-key",
         "chaos-" + std::to_string(settings.seed) + "-" + std::to_string(build.number),
         "--progress", "plain", scratch.path()},
        {}, scratch.path() + "/cli-" + std::to_string(build.number) + ".log");
    if (!started.ok()) {
      build.cli_outcome = "could not run the CLI: " + started.message();
      done[i] = true;
    }
  };
  const double last_submission = start + (settings.builds - 1) * settings.interval_s;
  const double deadline =
      std::max(last_submission, start + fault_offset_s + schedule_options.span.count() / 1000.0) +
      settings.timeout_s;
  for (int submitted = 0;;) {
    const double now = EpochSeconds();
    for (; submitted < settings.builds && now >= start + submitted * settings.interval_s;
         ++submitted) {
      builds[submitted].number = submitted + 1;
      builds[submitted].tag =
          farm.registry() +
          "/chaos:" + (submitted % 4 == 0 ? "shared" : "build-" + std::to_string(submitted + 1));
      run_cli(submitted);
    }
    bool all_done = submitted == settings.builds;
    for (int i = 0; i < submitted; ++i) {
      if (done[i]) continue;
      int exit_code = clis[i]->Wait(milliseconds(0));
      if (exit_code < 0 && now < deadline) {
        all_done = false;
        continue;
      }
      if (exit_code < 0) clis[i]->Stop();
      ReadCliOutput(test::ReadFileTail(clis[i]->log_file(), 1 << 20), exit_code, &builds[i]);
      if (builds[i].id == 0 && exit_code > 0 && now < deadline) {
        all_done = false;
        if (next_try[i] == 0) next_try[i] = now + 2;
        if (now >= next_try[i]) {
          next_try[i] = 0;
          run_cli(i);
        }
        continue;
      }
      done[i] = true;
    }
    if (all_done || now >= deadline) break;
    std::this_thread::sleep_for(milliseconds(250));
  }
  fault_thread.join();
  // A CLI may give up following while the coordinator is away; the builds go on.
  test::WaitFor([&] { return AllEnded(farm); },
                milliseconds(static_cast<int64_t>(std::max(deadline - EpochSeconds(), 0.0) * 1000)),
                milliseconds(500));
  const double now = EpochSeconds();
  Say("run ended after " + Fixed(now - start) + " s");

  if (Status read = ReadBuildRows(farm, &builds); !read.ok()) {
    Say("cannot read the builds from the database: " + read.message());
    return 2;
  }
  int resubmitted = 0;
  for (ChaosBuild& build : builds) {
    if (build.id != 0) ReadStatus(farm, &build);
    resubmitted += build.submissions > 1 ? 1 : 0;
    Say("build #" + std::to_string(build.number) + " id " + std::to_string(build.id) + " " +
        build.tag.substr(build.tag.find('/') + 1) + ": " + build.state +
        (build.finished > 0 ? " in " + Fixed(build.finished - build.created) + " s" : "") +
        (build.submissions > 1 ? ", submitted on try " + std::to_string(build.submissions) : ""));
  }
  Result<std::vector<std::string>> doubled = JobsWithTwoResults(farm);
  if (!doubled.ok()) {
    Say("cannot read the job events: " + doubled.status().message());
    return 2;
  }
  RegistryClient registry(farm.registry());
  std::vector<InvariantResult> results = {CheckBuildsEnd(builds, injected, now),
                                          CheckNoInfrastructureFailure(builds, injected, now),
                                          CheckIndexes(builds, kPlatforms, registry),
                                          CheckTags(builds, registry),
                                          CheckSingleResults(*doubled),
                                          CheckCliAgrees(builds)};
  bool all_ok = true;
  for (const InvariantResult& result : results) {
    all_ok = all_ok && result.ok();
    Say(std::string(result.ok() ? "PASS " : "FAIL ") + result.name);
    for (const std::string& violation : result.violations) Say("     " + violation);
  }
  ChaosFigures figures =
      ComputeFigures(builds, injected, static_cast<int>(results[3].violations.size()), now);
  Say("builds lost: " + std::to_string(figures.builds_lost) + " of " +
      std::to_string(builds.size()) + "; wrong tags: " + std::to_string(figures.wrong_tags));
  Say("fault-free builds: " + std::to_string(figures.clean_builds) + ", median " +
      Fixed(figures.clean_median_s) + " s; builds that lived through a fault: " +
      std::to_string(figures.faulted_builds) + ", time the fault added p50 " +
      Fixed(figures.added_p50_s) + " s, p99 " + Fixed(figures.added_p99_s) + " s");
  Say("bottleneck: " + figures.bottleneck);
  Say("builds whose submission was refused first (coordinator or database down) and made "
      "again: " +
      std::to_string(resubmitted));
  if (!all_ok) Say("farm logs were in " + farm.dir() + "/farm/logs (removed on exit)");
  return all_ok ? 0 : 1;
}

}  // namespace
}  // namespace manifold::bench

int main(int argc, char** argv) {
  manifold::bench::Settings settings;
  CLI::App app{"Builds on a real farm while seeded faults hit it; checks the invariants"};
  app.add_option("--seed", settings.seed, "Seed of the fault schedule (default: from the clock)");
  app.add_option("--builds", settings.builds, "Two-platform builds to submit")
      ->check(CLI::PositiveNumber);
  app.add_option("--faults", settings.faults, "Faults to inject")->check(CLI::NonNegativeNumber);
  app.add_option("--agents-per-platform", settings.agents_per_platform,
                 "buildah agents for linux/amd64 and for linux/arm64 each")
      ->check(CLI::Range(1, 16));
  app.add_option("--interval", settings.interval_s, "Seconds between two submissions")
      ->check(CLI::PositiveNumber);
  app.add_option("--calm", settings.calm_s, "Seconds without faults at the start")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--timeout", settings.timeout_s,
                 "Seconds after the last fault for every build to end")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  if (settings.seed == 0) {
    settings.seed =
        static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  }
  return manifold::bench::Run(settings);
}
