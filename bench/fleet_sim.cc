// fleet_sim: the fleet simulator and the coordinator's scale benchmarks (docs/BENCHMARKS.md).
// Each subcommand starts a real farm (ops/farm.sh: PostgreSQL, docker-registry, the
// coordinator), connects N simulated agents (bench/sim_fleet.h) and drives builds through
// the HTTP API, then prints its figures:
//   smoke       a few builds on a small fleet; exits 1 unless every build succeeded (ctest)
//   throughput  jobs/s submit -> result recorded, and pgbench -N on the same PostgreSQL
//   overhead    two-platform builds one at a time: submit -> index pushed, p50/p99
//   fleet       coordinator CPU and RSS with 1,000/5,000/10,000 agents, idle and loaded
//   dbwork      transactions and statements per job (pg_stat_database, pg_stat_statements)
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <thread>

#include "bench/bench_farm.h"
#include "bench/load_generator.h"
#include "bench/sim_fleet.h"
#include "common/oci.h"
#include "common/registry.h"

namespace manifold::bench {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

struct Settings {
  int agents = 20;
  int threads = 2;
  int submitters = 4;
  uint64_t inflight = 1000;
  int builds = 20;
  int duration_s = 60;
  int warmup_s = 5;
  int pgbench_s = 20;
  int pgbench_clients = 1;
  int sample_s = 30;
  int heartbeat_ms = 0;  // 0: the coordinator's default for throughput/overhead runs
  std::vector<int> sizes = {1000, 5000, 10000};
  // fleet: idle RSS again once each agent has sent this many heartbeats (0: not measured).
  int age_messages = 0;
  bool idle_only = false;                                    // fleet: no loaded figure
  int timeout_s = 300;
  int processes = 0;          // 0: one per kAgentsPerProcess agents
  std::string registry_data;  // the registry's storage; "": in the farm's directory
};

// Agents one simulator process holds by default: half of what the 20,000 open files of
// a common hard limit allow (two per agent), so each process also has CPU to spare.
constexpr int kAgentsPerProcess = 5000;

const std::vector<Platform> kTwoPlatforms = {{"linux", "amd64", ""}, {"linux", "arm64", ""}};
constexpr char kRepository[] = "bench";

int Fail(const std::string& message) {
  fprintf(stderr, "fleet_sim: %s\n", message.c_str());
  return 1;
}

std::map<std::string, std::string> CoordinatorEnv(const Settings& settings) {
  std::map<std::string, std::string> env;
  if (settings.heartbeat_ms > 0) {
    env["MANIFOLD_HEARTBEAT_INTERVAL_MS"] = std::to_string(settings.heartbeat_ms);
  }
  if (!settings.registry_data.empty()) env["MANIFOLD_FARM_REGISTRY_DATA"] = settings.registry_data;
  return env;
}

SimFleetOptions FleetOptions(const BenchFarm& farm, const Settings& settings, int agents,
                             const std::string& prefix) {
  SimFleetOptions options;
  options.endpoint = farm.agent_endpoint();
  options.agents = agents;
  options.platforms = kTwoPlatforms;
  options.images = farm.images();
  options.threads = settings.threads;
  options.id_prefix = prefix;
  options.processes = settings.processes > 0 ? settings.processes
                                             : (agents + kAgentsPerProcess - 1) / kAgentsPerProcess;
  options.child_command = {"/proc/self/exe", "agents", "--spec"};
  return options;
}

// Starts the fleet and waits until the coordinator has welcomed every agent.
Status Connect(SimFleet& fleet, const Settings& settings) {
  if (Status started = fleet.Start(); !started.ok()) return started;
  return fleet.WaitWelcomed(seconds(settings.timeout_s));
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Waits until every job submitted was recorded, or `timeout`.
bool WaitRecorded(const SimFleet& fleet, const LoadGenerator& load, uint64_t acked_before,
                  seconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (fleet.acked() - acked_before >= load.JobSubmitTimes().size()) return true;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return false;
}

// Waits until every build's index is in the registry; returns how many are missing.
size_t WaitIndexes(const BenchFarm& farm, std::map<uint64_t, std::string> tags, seconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (!tags.empty() && Clock::now() < deadline) {
    for (auto it = tags.begin(); it != tags.end();) {
      it = farm.TagExists(it->second) ? tags.erase(it) : std::next(it);
    }
    if (!tags.empty()) std::this_thread::sleep_for(milliseconds(100));
  }
  return tags.size();
}

int Smoke(const Settings& settings) {
  BenchFarm farm(CoordinatorEnv(settings));
  if (Status up = farm.Up(kTwoPlatforms, kRepository); !up.ok()) return Fail(up.message());
  SimFleet fleet(FleetOptions(farm, settings, settings.agents, "smoke"));
  if (Status s = Connect(fleet, settings); !s.ok()) return Fail(s.message());
  auto start = Clock::now();
  LoadGenerator load(farm, fleet,
                     {kTwoPlatforms, settings.submitters, settings.inflight, "smoke",
                      static_cast<uint64_t>(settings.builds)});
  load.Start();
  auto deadline = Clock::now() + seconds(settings.timeout_s);
  while (load.builds_submitted() + load.errors() < static_cast<uint64_t>(settings.builds) &&
         load.errors() == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  load.Stop();
  if (load.errors() > 0) return Fail("submitting a build failed: " + load.first_error());
  std::map<uint64_t, std::string> tags = load.BuildTags();
  size_t missing = WaitIndexes(farm, tags, seconds(settings.timeout_s));
  double took = Seconds(Clock::now() - start);
  // Every build must have succeeded, and its index must list both platforms' images.
  int failed = 0;
  for (const auto& [build_id, tag] : tags) {
    Result<std::string> state = farm.BuildState(build_id);
    if (!state.ok() || *state != "succeeded") {
      fprintf(stderr, "build %lu: %s\n", static_cast<unsigned long>(build_id),
              state.ok() ? state->c_str() : state.status().message().c_str());
      ++failed;
      continue;
    }
    Result<FetchedManifest> index = RegistryClient(farm.registry()).GetManifest(kRepository, tag);
    Result<Index> parsed = index.ok() ? ParseIndex(index->bytes) : Result<Index>(index.status());
    std::set<std::string> digests;
    if (parsed.ok()) {
      for (const Descriptor& child : parsed->manifests) digests.insert(child.digest);
    }
    std::set<std::string> expected;
    for (const auto& [platform, image] : farm.images()) expected.insert(image.digest);
    if (digests != expected) {
      fprintf(stderr, "build %lu: the index under %s does not list the two synthetic images\n",
              static_cast<unsigned long>(build_id), tag.c_str());
      ++failed;
    }
  }
  printf(
      "smoke: %d agents, %zu two-platform builds, %lu jobs recorded, %d failed, %zu indexes "
      "missing, %.2f s\n",
      settings.agents, tags.size(), static_cast<unsigned long>(fleet.acked()), failed, missing,
      took);
  fleet.Stop();
  if (tags.size() != static_cast<size_t>(settings.builds) || failed > 0 || missing > 0) {
    return Fail("not every build completed");
  }
  return 0;
}

int Throughput(const Settings& settings) {
  BenchFarm farm(CoordinatorEnv(settings));
  if (Status up = farm.Up(kTwoPlatforms, kRepository); !up.ok()) return Fail(up.message());
  std::string pgbench_command;
  Result<double> pgbench =
      farm.RunPgbench(settings.pgbench_s, settings.pgbench_clients, &pgbench_command);
  if (!pgbench.ok()) return Fail(pgbench.status().message());
  printf("pgbench: %.0f transactions/s (%s)\n", *pgbench, pgbench_command.c_str());

  SimFleet fleet(FleetOptions(farm, settings, settings.agents, "tp"));
  if (Status s = Connect(fleet, settings); !s.ok()) return Fail(s.message());
  printf("fleet: %d simulated agents welcomed\n", settings.agents);

  LoadGenerator load(farm, fleet, {kTwoPlatforms, settings.submitters, settings.inflight, "tp", 0});
  uint64_t acked_before = fleet.acked();
  load.Start();
  std::this_thread::sleep_for(seconds(settings.warmup_s));
  fleet.TakeAcks();
  Result<DbCounters> db_before = farm.ReadDbCounters();
  Result<ProcessSample> cpu_before = SampleProcess(farm.coordinator_pid());
  auto window_start = Clock::now();
  std::this_thread::sleep_for(seconds(settings.duration_s));
  std::vector<RecordedJob> recorded = fleet.TakeAcks();
  auto window_end = Clock::now();
  Result<DbCounters> db_after = farm.ReadDbCounters();
  Result<ProcessSample> cpu_after = SampleProcess(farm.coordinator_pid());
  load.Stop();

  double window = Seconds(window_end - window_start);
  double jobs_per_s = static_cast<double>(recorded.size()) / window;
  std::map<uint64_t, Clock::time_point> submitted = load.JobSubmitTimes();
  std::vector<double> latencies;
  for (const RecordedJob& job : recorded) {
    auto it = submitted.find(job.job_id);
    if (it != submitted.end()) latencies.push_back(Seconds(job.at - it->second) * 1000);
  }
  printf(
      "throughput: %.1f jobs/s recorded over %.1f s (%zu jobs; %d agents, %lu jobs "
      "outstanding at most, %d submitters, two-platform builds)\n",
      jobs_per_s, window, recorded.size(), settings.agents,
      static_cast<unsigned long>(settings.inflight), settings.submitters);
  printf("submit -> result recorded: p50 %.1f ms, p99 %.1f ms\n", Percentile(latencies, 0.5),
         Percentile(latencies, 0.99));
  printf("ratio to pgbench -N: %.3f (goal >= 0.5: %s)\n", jobs_per_s / *pgbench,
         jobs_per_s / *pgbench >= 0.5 ? "met" : "NOT met");
  if (db_before.ok() && db_after.ok() && !recorded.empty()) {
    double jobs = static_cast<double>(recorded.size());
    printf(
        "database work in the window: %.1f transactions/job, %.1f statements/job "
        "(%.0f transactions/s)\n",
        (db_after->transactions - db_before->transactions) / jobs,
        (db_after->statements - db_before->statements) / jobs,
        (db_after->transactions - db_before->transactions) / window);
    // The merges run beside the measured path; whether they keep up shows here.
    printf(
        "indexes pushed in the window: %.1f/s; builds waiting for their merge: %lu at its "
        "start, %lu at its end\n",
        (db_after->builds_succeeded - db_before->builds_succeeded) / window,
        static_cast<unsigned long>(db_before->builds_merging),
        static_cast<unsigned long>(db_after->builds_merging));
  }
  if (cpu_before.ok() && cpu_after.ok()) {
    printf("coordinator: %.0f%% of one core, RSS %.1f MB\n",
           100 * (cpu_after->cpu_seconds - cpu_before->cpu_seconds) / window,
           cpu_after->rss_bytes / 1e6);
  }
  if (load.errors() > 0)
    printf("submit errors: %lu (%s)\n", static_cast<unsigned long>(load.errors()),
           load.first_error().c_str());
  if (!WaitRecorded(fleet, load, acked_before, seconds(120))) {
    printf("warning: not every submitted job was recorded within 120 s after the run\n");
  }
  fleet.Stop();
  return 0;
}

int Overhead(const Settings& settings) {
  BenchFarm farm(CoordinatorEnv(settings));
  if (Status up = farm.Up(kTwoPlatforms, kRepository); !up.ok()) return Fail(up.message());
  SimFleet fleet(FleetOptions(farm, settings, settings.agents, "oh"));
  if (Status s = Connect(fleet, settings); !s.ok()) return Fail(s.message());
  const int warmup = 5;
  // Milliseconds from submit to each milestone of a build, in the order they happen.
  const std::vector<std::string> milestones = {"submit answered", "both jobs assigned",
                                               "both results recorded", "index pushed"};
  std::vector<std::vector<double>> at(milestones.size());
  int failed = 0;
  for (int i = 0; i < warmup + settings.builds; ++i) {
    std::string tag = "oh-" + std::to_string(i);
    fleet.TakeAcks();
    const uint64_t acked_before = fleet.acked();
    Clock::time_point start = Clock::now();
    Result<SubmittedBuild> build = farm.SubmitBuild(kTwoPlatforms, tag);
    if (!build.ok()) return Fail(build.status().message());
    Clock::time_point answered = Clock::now();
    // The registry is asked until the tag appears, about 1 ms resolution, from when both
    // results are acknowledged: asked earlier, it would compete with the coordinator for
    // the registry and the CPUs while the build is still being scheduled and recorded.
    auto deadline = start + seconds(30);
    while (fleet.acked() < acked_before + 2 && Clock::now() < deadline) {
      std::this_thread::sleep_for(microseconds(100));
    }
    bool pushed = false;
    while (!(pushed = farm.TagExists(tag)) && Clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(1));
    }
    Clock::time_point end = Clock::now();
    if (!pushed) {
      ++failed;
      continue;
    }
    Clock::time_point last_assigned = start, last_recorded = start;
    for (const RecordedJob& job : fleet.TakeAcks()) {
      last_assigned = std::max(last_assigned, job.assigned_at);
      last_recorded = std::max(last_recorded, job.at);
    }
    if (i < warmup) continue;
    Clock::time_point times[] = {answered, last_assigned, last_recorded, end};
    for (size_t m = 0; m < milestones.size(); ++m) {
      at[m].push_back(Seconds(times[m] - start) * 1000);
    }
  }
  printf(
      "overhead: %d two-platform builds one at a time, %d agents, zero-time builds, %d "
      "without an index after 30 s\n",
      settings.builds, settings.agents, failed);
  for (size_t m = 0; m + 1 < milestones.size(); ++m) {
    printf("submit -> %s: p50 %.1f ms, p99 %.1f ms\n", milestones[m].c_str(),
           Percentile(at[m], 0.5), Percentile(at[m], 0.99));
  }
  const std::vector<double>& to_index = at.back();
  double p50 = Percentile(to_index, 0.5), p99 = Percentile(to_index, 0.99);
  printf(
      "submit -> index pushed: p50 %.1f ms (goal 15: %.2fx), p99 %.1f ms (goal 50: %.2fx), "
      "max %.1f ms\n",
      p50, p50 / 15, p99, p99 / 50, Percentile(to_index, 1.0));
  // Where the time goes: the median of each step between milestones.
  std::string steps;
  for (size_t m = 0; m < milestones.size(); ++m) {
    std::vector<double> step;
    for (size_t b = 0; b < to_index.size(); ++b) step.push_back(at[m][b] - (m ? at[m - 1][b] : 0));
    char part[96];
    snprintf(part, sizeof(part), "%s%s %.1f ms", m ? ", " : "", milestones[m].c_str(),
             Percentile(step, 0.5));
    steps += part;
  }
  printf("steps, medians: %s\n", steps.c_str());
  fleet.Stop();
  return failed > 0 ? 1 : 0;
}

// Coordinator CPU as a fraction of one core, and peak RSS, over `window`.
struct Usage {
  double cores = 0;
  uint64_t peak_rss = 0;
};
Result<Usage> Measure(pid_t pid, seconds window) {
  Result<ProcessSample> first = SampleProcess(pid);
  if (!first.ok()) return first.status();
  Usage usage;
  auto start = Clock::now();
  Result<ProcessSample> last = first;
  while (Clock::now() - start < window) {
    std::this_thread::sleep_for(milliseconds(500));
    last = SampleProcess(pid);
    if (!last.ok()) return last.status();
    usage.peak_rss = std::max(usage.peak_rss, last->rss_bytes);
  }
  usage.cores = (last->cpu_seconds - first->cpu_seconds) / Seconds(Clock::now() - start);
  return usage;
}

int Fleet(Settings settings) {
  if (settings.heartbeat_ms == 0) settings.heartbeat_ms = 5000;
  // The coordinator inherits this limit through ops/farm.sh: it holds one connection per agent.
  uint64_t most = *std::max_element(settings.sizes.begin(), settings.sizes.end());
  RaiseFileLimit(2 * most + 1024);
  BenchFarm farm(CoordinatorEnv(settings));
  if (Status up = farm.Up(kTwoPlatforms, kRepository); !up.ok()) return Fail(up.message());
  printf("fleet: heartbeat every %d ms; each size on a freshly started coordinator\n",
         settings.heartbeat_ms);
  printf("%8s %12s %12s %12s %12s %12s %10s\n", "agents", "idle cores", "idle RSS MB",
         "aged RSS MB", "load cores", "load RSS MB", "jobs/s");
  std::string goal = "not measured (no run with 10,000 agents)";
  for (size_t round = 0; round < settings.sizes.size(); ++round) {
    int agents = settings.sizes[round];
    if (round > 0) {
      if (Status s = farm.RestartCoordinator(); !s.ok()) return Fail(s.message());
    }
    SimFleet fleet(FleetOptions(farm, settings, agents, "f" + std::to_string(round)));
    if (Status s = Connect(fleet, settings); !s.ok()) return Fail(s.message());
    fprintf(stderr, "fleet_sim: %d agents connected to coordinator pid %d\n", agents,
            static_cast<int>(farm.coordinator_pid()));
    // Let the hello burst pass and heartbeats settle into their rhythm.
    std::this_thread::sleep_for(milliseconds(2 * settings.heartbeat_ms));
    const auto connected = Clock::now();
    Result<Usage> idle = Measure(farm.coordinator_pid(), seconds(settings.sample_s));
    if (!idle.ok()) return Fail(idle.status().message());
    // The same fleet once every agent has carried `age_messages` heartbeats: libzmq's
    // per-connection memory depends on the messages a connection carried.
    Usage aged;
    if (settings.age_messages > 0) {
      std::this_thread::sleep_until(
          connected + milliseconds(int64_t{settings.age_messages} * settings.heartbeat_ms));
      Result<Usage> measured = Measure(farm.coordinator_pid(), seconds(settings.sample_s));
      if (!measured.ok()) return Fail(measured.status().message());
      aged = *measured;
    }
    // More welcomes than agents: the coordinator lost agents (a late heartbeat) and they
    // said hello again on new connections, which the aged figure then includes.
    fprintf(stderr, "fleet_sim: %d agents idle: %.1f MB fresh, %.1f MB aged; %lu welcomes\n",
            agents, idle->peak_rss / 1e6, aged.peak_rss / 1e6,
            static_cast<unsigned long>(fleet.welcomed()));
    Usage loaded;
    double jobs_per_s = 0;
    if (!settings.idle_only) {
      LoadGenerator load(
          farm, fleet,
          {kTwoPlatforms, settings.submitters, std::min<uint64_t>(settings.inflight, agents),
           "f" + std::to_string(round), 0});
      uint64_t acked_before = fleet.acked();
      load.Start();
      std::this_thread::sleep_for(seconds(settings.warmup_s));
      uint64_t acked_start = fleet.acked();
      auto load_start = Clock::now();
      Result<Usage> measured = Measure(farm.coordinator_pid(), seconds(settings.sample_s));
      jobs_per_s = (fleet.acked() - acked_start) / Seconds(Clock::now() - load_start);
      load.Stop();
      if (!measured.ok()) return Fail(measured.status().message());
      loaded = *measured;
      WaitRecorded(fleet, load, acked_before, seconds(120));
      // The next size starts on a fresh coordinator, which would otherwise merge this
      // round's backlog while it is measured.
      size_t unmerged = WaitIndexes(farm, load.BuildTags(), seconds(settings.timeout_s));
      if (unmerged > 0) fprintf(stderr, "fleet_sim: %zu builds still unmerged\n", unmerged);
    }
    printf("%8d %12.3f %12.1f %12.1f %12.3f %12.1f %10.1f\n", agents, idle->cores,
           idle->peak_rss / 1e6, aged.peak_rss / 1e6, loaded.cores, loaded.peak_rss / 1e6,
           jobs_per_s);
    fflush(stdout);
    if (agents == 10000) {
      const uint64_t rss = std::max(idle->peak_rss, aged.peak_rss);
      const bool aged_flat = settings.age_messages == 0 || aged.peak_rss <= 1.1 * idle->peak_rss;
      goal = idle->cores < 0.5 && rss < 350e6 && aged_flat ? "met" : "NOT met";
    }
    fleet.Stop();
  }
  printf("goal (10,000 agents idle: < 0.5 core, < 350 MB, aged within 1.1x of fresh): %s\n",
         goal.c_str());
  return 0;
}

int DbWork(const Settings& settings) {
  BenchFarm farm(CoordinatorEnv(settings));
  if (Status up = farm.Up(kTwoPlatforms, kRepository); !up.ok()) return Fail(up.message());
  SimFleet fleet(FleetOptions(farm, settings, settings.agents, "db"));
  if (Status s = Connect(fleet, settings); !s.ok()) return Fail(s.message());
  std::this_thread::sleep_for(seconds(1));
  Result<DbCounters> before = farm.ReadDbCounters();
  if (!before.ok()) return Fail(before.status().message());
  LoadGenerator load(farm, fleet,
                     {kTwoPlatforms, settings.submitters, settings.inflight, "db",
                      static_cast<uint64_t>(settings.builds)});
  uint64_t acked_before = fleet.acked();
  load.Start();
  auto deadline = Clock::now() + seconds(settings.timeout_s);
  while (load.builds_submitted() < static_cast<uint64_t>(settings.builds) && load.errors() == 0 &&
         Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  load.Stop();
  if (load.errors() > 0) return Fail("submitting a build failed: " + load.first_error());
  WaitRecorded(fleet, load, acked_before, seconds(settings.timeout_s));
  size_t missing = WaitIndexes(farm, load.BuildTags(), seconds(settings.timeout_s));
  // The build's own record is written right after its index is pushed.
  std::this_thread::sleep_for(seconds(1));
  Result<DbCounters> after = farm.ReadDbCounters();
  if (!after.ok()) return Fail(after.status().message());
  double jobs = static_cast<double>(load.JobSubmitTimes().size());
  double builds = static_cast<double>(load.builds_submitted());
  uint64_t transactions = after->transactions - before->transactions;
  uint64_t statements = after->statements - before->statements;
  printf("dbwork: %.0f two-platform builds (%.0f jobs), %d agents, %zu indexes missing\n", builds,
         jobs, settings.agents, missing);
  printf("transactions: %lu total, %.2f per job, %.2f per build\n",
         static_cast<unsigned long>(transactions), transactions / jobs, transactions / builds);
  printf("statements (BEGIN/COMMIT excluded): %lu total, %.2f per job, %.2f per build\n",
         static_cast<unsigned long>(statements), statements / jobs, statements / builds);
  fleet.Stop();
  return missing > 0 ? 1 : 0;
}

}  // namespace
}  // namespace manifold::bench

int main(int argc, char** argv) {
  using namespace manifold::bench;
  CLI::App app{"fleet_sim: simulated agents against a real coordinator; prints benchmark figures"};
  app.require_subcommand(1);
  Settings s;
  bool registry_in_memory = false;
  // -1: the subcommand's own default, filled in after parsing.
  s.agents = -1;
  s.builds = -1;
  auto common = [&](CLI::App* sub) {
    sub->add_option("--agents", s.agents, "simulated agents (half linux/amd64, half linux/arm64)");
    sub->add_option("--threads", s.threads, "simulator threads (per process)")
        ->capture_default_str();
    sub->add_option("--processes", s.processes,
                    "simulator processes holding the agents, each with its own open-file limit "
                    "(0: one per 5,000 agents)")
        ->capture_default_str();
    sub->add_option("--submitters", s.submitters, "threads submitting builds")
        ->capture_default_str();
    sub->add_option("--inflight", s.inflight, "jobs submitted but not yet recorded, at most")
        ->capture_default_str();
    sub->add_option("--heartbeat-ms", s.heartbeat_ms,
                    "coordinator's heartbeat interval (0: its default; fleet: 5000)")
        ->capture_default_str();
    sub->add_option("--timeout", s.timeout_s, "seconds any one wait may take")
        ->capture_default_str();
    sub->add_flag("--registry-in-memory", registry_in_memory,
                  "keep the registry's storage in /dev/shm, out of the disk's flushes "
                  "(PostgreSQL stays where the farm is)");
  };
  CLI::App* smoke =
      app.add_subcommand("smoke", "a short run that fails unless every build succeeds");
  common(smoke);
  smoke->add_option("--builds", s.builds, "two-platform builds (default 20)");
  CLI::App* throughput = app.add_subcommand("throughput", "jobs/s and pgbench -N in the same run");
  common(throughput);
  throughput->add_option("--duration", s.duration_s, "seconds measured")->capture_default_str();
  throughput->add_option("--warmup", s.warmup_s, "seconds of load before measuring")
      ->capture_default_str();
  throughput->add_option("--pgbench-seconds", s.pgbench_s, "pgbench -T")->capture_default_str();
  throughput->add_option("--pgbench-clients", s.pgbench_clients, "pgbench -c")
      ->capture_default_str();
  CLI::App* overhead =
      app.add_subcommand("overhead", "submit -> index pushed, one build at a time");
  common(overhead);
  overhead->add_option("--builds", s.builds,
                       "builds measured after 5 warm-up builds (default 200)");
  CLI::App* fleet = app.add_subcommand("fleet", "coordinator CPU and RSS by fleet size");
  common(fleet);
  fleet->add_option("--sizes", s.sizes, "fleet sizes")->capture_default_str();
  fleet->add_option("--sample-seconds", s.sample_s, "seconds each figure is measured over")
      ->capture_default_str();
  fleet->add_option("--warmup", s.warmup_s, "seconds of load before measuring")
      ->capture_default_str();
  fleet
      ->add_option("--age-messages", s.age_messages,
                   "measure idle RSS again once each agent has sent this many heartbeats "
                   "(0: not measured)")
      ->capture_default_str();
  fleet->add_flag("--idle-only", s.idle_only, "measure no loaded figure");
  CLI::App* dbwork = app.add_subcommand("dbwork", "transactions and statements per job");
  common(dbwork);
  dbwork->add_option("--builds", s.builds, "two-platform builds (default 500)");
  // One process of a fleet run in several (SimFleetOptions::processes); not for people.
  std::string child_spec;
  CLI::App* agents = app.add_subcommand("agents", "")->group("");
  agents->add_option("--spec", child_spec)->required();
  CLI11_PARSE(app, argc, argv);
  if (agents->parsed()) return SimFleet::RunChild(child_spec);
  if (registry_in_memory) {
    char dir[] = "/dev/shm/fleet_sim-registry-XXXXXX";
    if (mkdtemp(dir) == nullptr)
      return Fail(std::string("mkdtemp in /dev/shm: ") + strerror(errno));
    s.registry_data = dir;
  }
  struct RemoveAtExit {
    std::string dir;
    ~RemoveAtExit() {
      std::error_code ignored;
      if (!dir.empty()) std::filesystem::remove_all(dir, ignored);
    }
  } registry_storage{s.registry_data};
  auto defaults = [&](int agents, int builds) {
    if (s.agents < 0) s.agents = agents;
    if (s.builds < 0) s.builds = builds;
  };
  if (smoke->parsed()) {
    defaults(20, 20);
    return Smoke(s);
  }
  if (throughput->parsed()) {
    defaults(1000, 0);
    return Throughput(s);
  }
  if (overhead->parsed()) {
    defaults(100, 200);
    return Overhead(s);
  }
  if (fleet->parsed()) return Fleet(s);
  defaults(100, 500);
  return DbWork(s);
}
