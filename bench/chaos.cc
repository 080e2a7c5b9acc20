// chaos: two-platform builds on a real farm while faults hit it, then #16's invariants.
//
// It brings up a farm with ops/farm.sh (PostgreSQL, docker-registry, the coordinator and
// --agents-per-platform buildah agents for linux/amd64 and for linux/arm64, the latter
// under QEMU; heartbeats every 500 ms, lost after 3 missed, drain grace 3 s), submits
// --builds small two-platform builds with the real `manifold build`, one every --interval
// seconds (every fourth to the shared tag chaos:shared), and after --calm seconds does the
// --faults faults of --seed's schedule (bench/chaos_schedule.h), one after another. Once
// every build has ended, or --timeout seconds after the last submission or fault, it checks
// the invariants (bench/chaos_invariants.h), prints them with the figures, and exits 1 if
// any failed (2 if the run itself could not be made). Example:
//   build/bench/chaos --seed 16 --builds 200 --faults 100 --agents-per-platform 3
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <thread>

#include "bench/chaos_builds.h"
#include "bench/chaos_injector.h"
#include "bench/chaos_invariants.h"
#include "bench/chaos_schedule.h"
#include "common/registry.h"
#include "tests/support/farm.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace manifold::bench {
namespace {

using std::chrono::milliseconds;

struct Settings {
  uint64_t seed = 0;  // 0: from the clock (printed, so the run can be repeated)
  int builds = 12;
  int faults = 6;
  int agents_per_platform = 2;
  double interval_s = 4;
  double calm_s = 20;
  int timeout_s = 300;
  std::string logs;  // where to keep the farm's and the CLIs' logs; "": nowhere
};

const std::vector<std::string> kPlatforms = {"linux/amd64", "linux/arm64"};
constexpr int kHeartbeatMs = 500;
constexpr int kMissedHeartbeats = 3;

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

// "HH:MM:SS" UTC, to find a fault in the farm's logs.
std::string Utc(double epoch_seconds) {
  time_t seconds = static_cast<time_t>(epoch_seconds);
  struct tm utc;
  gmtime_r(&seconds, &utc);
  char text[16];
  strftime(text, sizeof text, "%H:%M:%S", &utc);
  return text;
}

std::vector<std::string> AgentNames(const Settings& settings) {
  std::vector<std::string> names;
  for (const std::string& platform : kPlatforms) {
    for (int i = 1; i <= settings.agents_per_platform; ++i) {
      names.push_back(platform.substr(platform.find('/') + 1) + "-" + std::to_string(i));
    }
  }
  return names;
}

test::FarmOptions FarmFor(const Settings& settings) {
  test::FarmOptions options;
  for (const std::string& name : AgentNames(settings)) {
    options.agents.push_back(name + ":linux/" + name.substr(0, name.find('-')));
  }
  options.env = {{"MANIFOLD_HEARTBEAT_INTERVAL_MS", std::to_string(kHeartbeatMs)},
                 {"MANIFOLD_MISSED_HEARTBEATS", std::to_string(kMissedHeartbeats)},
                 {"MANIFOLD_DRAIN_GRACE", "3"},
                 {"MANIFOLD_FARM_STOP_TIMEOUT", "30"}};
  return options;
}

// The faults, at offsets from the end of the calm start, spread over the submissions left.
ScheduleOptions ScheduleFor(const Settings& settings, double calm_s) {
  ScheduleOptions options;
  options.seed = settings.seed;
  options.faults = settings.faults;
  options.span = milliseconds(
      static_cast<int64_t>(std::max(settings.builds * settings.interval_s - calm_s, 1.0) * 1000));
  options.agents = AgentNames(settings);
  options.liveness_limit = milliseconds(kHeartbeatMs * kMissedHeartbeats);
  return options;
}

// Does each fault at its time (`start` + `calm_s` + its offset), printing it.
std::vector<InjectedFault> InjectAll(test::Farm* farm, const std::vector<Fault>& schedule,
                                     double start, double calm_s) {
  FaultInjector injector(
      farm, {[farm] { return SomeJobPushing(*farm); }, [farm] { return BusyAgents(*farm); }});
  std::vector<InjectedFault> injected;
  for (const Fault& fault : schedule) {
    std::this_thread::sleep_for(
        std::chrono::duration<double>(start + calm_s + fault.at.count() / 1000.0 - EpochSeconds()));
    InjectedFault record = injector.Inject(static_cast<int>(injected.size()) + 1, fault);
    Say("fault #" + std::to_string(record.number) + " at +" + Fixed(record.began - start) + " s (" +
        Utc(record.began) + " UTC): " + FaultKindName(fault.kind) + " " + record.fault.target +
        ", back after " + Fixed(record.ended - record.began) + " s" +
        (record.note.empty() ? "" : "; " + record.note) +
        (record.error.empty() ? "" : "; FAILED: " + record.error));
    injected.push_back(record);
  }
  return injected;
}

// Prints each build, each invariant and the figures; true when every invariant holds.
bool Report(const test::Farm& farm, const std::vector<ChaosBuild>& builds,
            const std::vector<InjectedFault>& faults, const std::vector<std::string>& doubled,
            double now) {
  int resubmitted = 0;
  for (const ChaosBuild& build : builds) {
    resubmitted += build.submissions > 1 ? 1 : 0;
    Say("build #" + std::to_string(build.number) + " id " + std::to_string(build.id) + " " +
        build.tag.substr(build.tag.find('/') + 1) + ": " + build.state +
        (build.finished > 0 ? " in " + Fixed(build.finished - build.created) + " s" : "") +
        (build.submissions > 1 ? ", submitted on try " + std::to_string(build.submissions) : ""));
  }
  RegistryClient registry(farm.registry());
  InvariantResult tags = CheckTags(builds, registry);
  std::vector<InvariantResult> results = {CheckBuildsEnd(builds, faults, now),
                                          CheckNoInfrastructureFailure(builds, faults, now),
                                          CheckIndexes(builds, kPlatforms, registry),
                                          tags,
                                          CheckSingleResults(doubled),
                                          CheckCliAgrees(builds)};
  bool all_ok = true;
  for (const InvariantResult& result : results) {
    all_ok = all_ok && result.ok();
    Say(std::string(result.ok() ? "PASS " : "FAIL ") + result.name);
    for (const std::string& violation : result.violations) Say("     " + violation);
  }
  ChaosFigures figures =
      ComputeFigures(builds, faults, static_cast<int>(tags.violations.size()), now);
  Say("builds lost: " + std::to_string(figures.builds_lost) + " of " +
      std::to_string(builds.size()) + "; wrong tags: " + std::to_string(figures.wrong_tags));
  Say("fault-free builds: " + std::to_string(figures.clean_builds) + ", median " +
      Fixed(figures.clean_median_s) + " s; builds that lived through a fault: " +
      std::to_string(figures.faulted_builds) + ", time the fault added p50 " +
      Fixed(figures.added_p50_s) + " s, p99 " + Fixed(figures.added_p99_s) + " s");
  Say("bottleneck: " + figures.bottleneck);
  Say("builds submitted again after a refused submission: " + std::to_string(resubmitted));
  return all_ok;
}

void KeepLogs(const test::Farm& farm, const std::string& scratch, const std::string& to) {
  namespace fs = std::filesystem;
  std::error_code error;
  fs::create_directories(to + "/cli", error);
  fs::copy(farm.dir() + "/farm/logs", to, fs::copy_options::overwrite_existing, error);
  for (const auto& entry : fs::directory_iterator(scratch, error)) {
    if (entry.path().extension() == ".log") {
      fs::copy(entry.path(), to + "/cli", fs::copy_options::overwrite_existing, error);
    }
  }
  Say("logs kept in " + to + (error ? " (partly: " + error.message() + ")" : ""));
}

int Run(const Settings& settings) {
  const double calm_s = std::min(settings.calm_s, settings.builds * settings.interval_s);
  const ScheduleOptions schedule_options = ScheduleFor(settings, calm_s);
  const std::vector<Fault> schedule = ChaosSchedule(schedule_options);
  Say("seed " + std::to_string(settings.seed) + ": " + std::to_string(settings.builds) +
      " builds, " + std::to_string(schedule.size()) + " faults, " +
      std::to_string(schedule_options.agents.size()) + " agents");
  test::Farm farm(FarmFor(settings));
  if (Status up = farm.Up(); !up.ok()) {
    Say("the farm did not come up: " + up.message());
    return 2;
  }
  test::TempDir scratch("manifold-chaos");
  ChaosBuilds builds(&farm, kPlatforms, scratch.path(), settings.seed);

  const double start = EpochSeconds();
  std::vector<InjectedFault> faults;
  std::thread fault_thread([&] { faults = InjectAll(&farm, schedule, start, calm_s); });
  const double deadline = start +
                          std::max((settings.builds - 1) * settings.interval_s,
                                   calm_s + schedule_options.span.count() / 1000.0) +
                          settings.timeout_s;
  for (int submitted = 0;;) {
    const double now = EpochSeconds();
    for (; submitted < settings.builds && now >= start + submitted * settings.interval_s;
         ++submitted) {
      builds.Submit(farm.registry() + "/chaos:" +
                    (submitted % 4 == 0 ? "shared" : "build-" + std::to_string(submitted + 1)));
    }
    if ((builds.Poll(now, deadline) && submitted == settings.builds) || now >= deadline) break;
    std::this_thread::sleep_for(milliseconds(250));
  }
  fault_thread.join();
  // A CLI may give up following while the coordinator is away; the builds go on.
  test::WaitFor([&] { return AllBuildsEnded(farm); },
                milliseconds(static_cast<int64_t>(std::max(deadline - EpochSeconds(), 0.0) * 1000)),
                milliseconds(500));
  const double now = EpochSeconds();
  Say("run ended after " + Fixed(now - start) + " s");

  Result<std::vector<std::string>> doubled = JobsWithTwoResults(farm);
  Status read = builds.ReadOutcomes();
  if (!read.ok() || !doubled.ok()) {
    Say("cannot read the outcomes from the database: " +
        (read.ok() ? doubled.status() : read).message());
    return 2;
  }
  bool all_ok = Report(farm, builds.builds(), faults, *doubled, now);
  if (!settings.logs.empty()) KeepLogs(farm, scratch.path(), settings.logs);
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
                 "Seconds after the last submission or fault for every build to end")
      ->check(CLI::PositiveNumber);
  app.add_option("--logs", settings.logs, "Keep the farm's and the CLIs' logs in this directory");
  CLI11_PARSE(app, argc, argv);
  if (settings.seed == 0) {
    settings.seed =
        static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  }
  return manifold::bench::Run(settings);
}
