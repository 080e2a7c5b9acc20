// soak: weeks of a farm's history in one run, to show that nothing grows with its age.
// A real farm (ops/farm.sh: PostgreSQL, docker-registry, the coordinator) with a short
// --retention (60 s by default), simulated agents (bench/sim_fleet.h) whose zero-time
// builds each send a little build output, and builds submitted through the HTTP API in a
// closed loop (at most --inflight builds not yet ended, counted from the coordinator's
// manifold_builds_total), so the builds, jobs, events and logs tables turn over many
// times. Once the tables have turned over once (the start) and again at the end it prints
// the database size (pg_database_size), the coordinator's state dir, its RSS and the API's
// latency (GET /v1/builds/ID of a recent build and GET /v1/builds, p50/p99), and the
// ratio of end to start; the goal is flat, within 1.5x. See docs/BENCHMARKS.md.
#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <regex>
#include <thread>

#include "bench/bench_farm.h"
#include "bench/load_generator.h"
#include "bench/sim_fleet.h"
#include "coordinator/retention.h"

namespace manifold::bench {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

struct Settings {
  uint64_t builds = 100000;
  int agents = 40;
  std::string retention = "60s";
  uint64_t inflight = 200;  // builds submitted and not yet ended
  int submitters = 4;
  uint32_t log_bytes = 2048;
  bool one_platform = false;  // builds for linux/amd64 only: one job each
  int latency_requests = 300;
  int timeout_s = 600;
  std::string registry_data;
};

const std::vector<Platform> kTwoPlatforms = {{"linux", "amd64", ""}, {"linux", "arm64", ""}};
constexpr char kRepository[] = "soak";
// Builds push to this many tags in turn, so the registry holds a bounded set.
constexpr uint64_t kTags = 1000;

int Fail(const std::string& message) {
  fprintf(stderr, "soak: %s\n", message.c_str());
  return 1;
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

uint64_t DirectoryBytes(const std::string& dir) {
  uint64_t bytes = 0;
  std::error_code error;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir, error)) {
    if (entry.is_regular_file(error)) bytes += entry.file_size(error);
  }
  return bytes;
}

// Builds ended so far (every result), from the coordinator's manifold_builds_total.
Result<uint64_t> BuildsEnded(BenchFarm& farm) {
  Result<std::string> text = farm.farm().Metrics("coordinator");
  if (!text.ok()) return text.status();
  static const std::regex kLine(R"(manifold_builds_total\{result="[a-z]+"\} ([0-9.e+]+))");
  double ended = 0;
  for (std::sregex_iterator it(text->begin(), text->end(), kLine), end; it != end; ++it) {
    ended += std::stod((*it)[1].str());
  }
  return static_cast<uint64_t>(ended);
}

// What a farm looks like at one moment of the run.
struct Sample {
  uint64_t builds_ended = 0;
  double at_s = 0;  // since the submits began
  uint64_t database_bytes = 0, state_dir_bytes = 0, rss_bytes = 0;
  double get_p50_ms = 0, get_p99_ms = 0, list_p50_ms = 0, list_p99_ms = 0;
  std::string rows;  // rows in each history table
};

// Milliseconds of each of `requests` GETs of `path`; errors are counted in *failed.
std::vector<double> TimeGets(BenchFarm& farm, const std::function<std::string()>& path,
                             int requests, int* failed) {
  std::vector<double> ms;
  for (int i = 0; i < requests; ++i) {
    Clock::time_point start = Clock::now();
    Result<HttpResponse> response = farm.farm().Api("GET", path());
    ms.push_back(Seconds(Clock::now() - start) * 1000);
    if (!response.ok() || response->status != 200) ++*failed;
  }
  return ms;
}

Result<Sample> TakeSample(BenchFarm& farm, const Settings& settings,
                          const std::atomic<uint64_t>& latest_build, Clock::time_point start) {
  Sample sample;
  sample.at_s = Seconds(Clock::now() - start);
  Result<uint64_t> ended = BuildsEnded(farm);
  if (!ended.ok()) return ended.status();
  sample.builds_ended = *ended;
  Result<uint64_t> database = farm.DatabaseBytes();
  if (!database.ok()) return database.status();
  sample.database_bytes = *database;
  sample.state_dir_bytes = DirectoryBytes(farm.farm().dir() + "/farm/coordinator");
  Result<ProcessSample> process = SampleProcess(farm.coordinator_pid());
  if (!process.ok()) return process.status();
  sample.rss_bytes = process->rss_bytes;
  int failed = 0;
  // A build submitted a moment ago: one that is still kept whatever the retention.
  std::vector<double> get = TimeGets(
      farm, [&] { return "/v1/builds/" + std::to_string(latest_build.load()); },
      settings.latency_requests, &failed);
  std::vector<double> list = TimeGets(
      farm, [] { return std::string("/v1/builds?limit=20"); }, settings.latency_requests, &failed);
  if (failed > 0) return Status::Internal(std::to_string(failed) + " API requests failed");
  sample.get_p50_ms = Percentile(get, 0.5);
  sample.get_p99_ms = Percentile(get, 0.99);
  sample.list_p50_ms = Percentile(list, 0.5);
  sample.list_p99_ms = Percentile(list, 0.99);
  Result<std::string> rows = farm.TableRows();
  sample.rows = rows.ok() ? *rows : rows.status().message();
  return sample;
}

void Print(const char* name, const Sample& s) {
  printf(
      "%-6s %9lu builds ended, %7.0f s: database %7.1f MB, state dir %6.1f kB, coordinator RSS "
      "%6.1f MB, GET /v1/builds/ID p50 %5.2f p99 %6.2f ms, GET /v1/builds p50 %5.2f p99 %6.2f "
      "ms; rows: %s\n",
      name, static_cast<unsigned long>(s.builds_ended), s.at_s, s.database_bytes / 1e6,
      s.state_dir_bytes / 1e3, s.rss_bytes / 1e6, s.get_p50_ms, s.get_p99_ms, s.list_p50_ms,
      s.list_p99_ms, s.rows.c_str());
  fflush(stdout);
}

int Soak(const Settings& settings) {
  Result<std::chrono::seconds> retention = ParseRetention("--retention", settings.retention);
  if (!retention.ok()) return Fail(retention.status().message());
  if (retention->count() == 0) return Fail("--retention 0 keeps everything: nothing to soak");
  std::map<std::string, std::string> env = {{"MANIFOLD_RETENTION", settings.retention}};
  if (!settings.registry_data.empty()) env["MANIFOLD_FARM_REGISTRY_DATA"] = settings.registry_data;
  BenchFarm farm(env);
  if (Status up = farm.Up(kTwoPlatforms, kRepository); !up.ok()) return Fail(up.message());
  SimFleetOptions fleet_options;
  fleet_options.endpoint = farm.agent_endpoint();
  fleet_options.agents = settings.agents;
  fleet_options.platforms = kTwoPlatforms;
  fleet_options.images = farm.images();
  fleet_options.id_prefix = "soak";
  fleet_options.log_bytes = settings.log_bytes;
  SimFleet fleet(fleet_options);
  if (Status s = fleet.Start(); !s.ok()) return Fail(s.message());
  if (Status s = fleet.WaitWelcomed(seconds(settings.timeout_s)); !s.ok()) return Fail(s.message());

  const std::vector<Platform> platforms(kTwoPlatforms.begin(),
                                        kTwoPlatforms.begin() + (settings.one_platform ? 1 : 2));
  // The closed loop: submitters wait while --inflight builds have not ended.
  std::atomic<uint64_t> ended{0}, next{0}, submitted{0}, errors{0}, latest_build{0};
  std::atomic<bool> stopping{false};
  std::thread counter([&] {
    while (!stopping) {
      Result<uint64_t> now = BuildsEnded(farm);
      if (now.ok()) ended = *now;
      std::this_thread::sleep_for(milliseconds(100));
    }
  });
  std::vector<std::thread> submitters;
  for (int i = 0; i < settings.submitters; ++i) {
    submitters.emplace_back([&] {
      while (!stopping) {
        if (submitted.load() >= ended.load() + settings.inflight) {
          std::this_thread::sleep_for(milliseconds(1));
          continue;
        }
        uint64_t sequence = next.fetch_add(1);
        if (sequence >= settings.builds) return;
        // A failed submission is tried again, so that every sequence number becomes a
        // build and the run can reach --builds.
        Result<SubmittedBuild> build = Status::Unavailable("not submitted yet");
        while (!stopping) {
          build = farm.SubmitBuild(platforms, "t" + std::to_string(sequence % kTags));
          if (build.ok()) break;
          if (errors.fetch_add(1) == 0)
            fprintf(stderr, "soak: %s\n", build.status().message().c_str());
          std::this_thread::sleep_for(milliseconds(100));
        }
        if (!build.ok()) return;
        ++submitted;
        uint64_t seen = latest_build.load();
        while (build->build_id > seen &&
               !latest_build.compare_exchange_weak(seen, build->build_id)) {
        }
      }
    });
  }
  auto stop = [&] {
    stopping = true;
    for (std::thread& t : submitters) t.join();
    counter.join();
  };

  // The start: once the first builds are past the retention and a deletion pass ran, so
  // the tables hold what they hold from then on (a retention's worth of builds).
  auto started = Clock::now();
  auto warm = *retention * 2 + seconds(5);
  printf(
      "soak: %lu %s builds, %d agents, --retention %s, at most %lu builds in flight, "
      "%u bytes of output per job; start measured after %ld s\n",
      static_cast<unsigned long>(settings.builds),
      settings.one_platform ? "linux/amd64" : "two-platform", settings.agents,
      settings.retention.c_str(), static_cast<unsigned long>(settings.inflight), settings.log_bytes,
      static_cast<long>(warm.count()));
  fflush(stdout);
  while (Clock::now() - started < warm && ended.load() < settings.builds) {
    std::this_thread::sleep_for(milliseconds(200));
  }
  Result<Sample> first = TakeSample(farm, settings, latest_build, started);
  if (!first.ok()) {
    stop();
    return Fail(first.status().message());
  }
  Print("start", *first);
  // A line every tenth of the run, so a slow growth shows its slope.
  uint64_t next_report = settings.builds / 10;
  auto last_progress = Clock::now();
  uint64_t last_ended = ended.load();
  while (ended.load() < settings.builds && errors.load() < 100) {
    std::this_thread::sleep_for(milliseconds(500));
    if (ended.load() != last_ended) {
      last_ended = ended.load();
      last_progress = Clock::now();
    } else if (Clock::now() - last_progress > seconds(settings.timeout_s)) {
      stop();
      return Fail("no build ended for " + std::to_string(settings.timeout_s) + " s; " +
                  std::to_string(ended.load()) + " of " + std::to_string(settings.builds) +
                  " ended");
    }
    if (ended.load() >= next_report && ended.load() < settings.builds) {
      next_report += settings.builds / 10;
      Result<Sample> mid = TakeSample(farm, settings, latest_build, started);
      if (mid.ok()) Print("", *mid);
    }
  }
  Result<Sample> last = TakeSample(farm, settings, latest_build, started);
  stop();
  if (errors.load() > 0)
    fprintf(stderr, "soak: %lu submits failed\n", static_cast<unsigned long>(errors.load()));
  if (!last.ok()) return Fail(last.status().message());
  Print("end", *last);
  double took = Seconds(Clock::now() - started);
  printf("soak: %lu builds ended in %.0f s (%.1f builds/s), %.1f retention periods\n",
         static_cast<unsigned long>(last->builds_ended), took, last->builds_ended / took,
         took / static_cast<double>(retention->count()));
  struct Figure {
    const char* name;
    double start, end;
  };
  bool flat = true;
  for (const Figure& f :
       {Figure{"database size", double(first->database_bytes), double(last->database_bytes)},
        Figure{"state dir size", double(first->state_dir_bytes), double(last->state_dir_bytes)},
        Figure{"coordinator RSS", double(first->rss_bytes), double(last->rss_bytes)},
        Figure{"GET /v1/builds/ID p50", first->get_p50_ms, last->get_p50_ms},
        Figure{"GET /v1/builds/ID p99", first->get_p99_ms, last->get_p99_ms},
        Figure{"GET /v1/builds p50", first->list_p50_ms, last->list_p50_ms},
        Figure{"GET /v1/builds p99", first->list_p99_ms, last->list_p99_ms}}) {
    double ratio = f.start > 0 ? f.end / f.start : 0;
    bool met = ratio <= 1.5;
    flat = flat && met;
    printf("%-22s end/start %.2fx (goal <= 1.5x: %s)\n", f.name, ratio, met ? "met" : "NOT met");
  }
  printf("goal (every figure flat within 1.5x): %s\n", flat ? "met" : "NOT met");
  fleet.Stop();
  return last->builds_ended >= settings.builds ? 0 : 1;
}

}  // namespace
}  // namespace manifold::bench

int main(int argc, char** argv) {
  using namespace manifold::bench;
  CLI::App app{"soak: a long run with a short retention; prints whether the farm stays flat"};
  Settings s;
  bool registry_in_memory = false;
  app.add_option("--builds", s.builds, "builds (a few hundred for a smoke run)")
      ->capture_default_str();
  app.add_option("--agents", s.agents, "simulated agents (half linux/amd64, half linux/arm64)")
      ->capture_default_str();
  app.add_option("--retention", s.retention, "the coordinator's --retention")
      ->capture_default_str();
  app.add_option("--inflight", s.inflight, "builds submitted and not yet ended, at most")
      ->capture_default_str();
  app.add_option("--submitters", s.submitters, "threads submitting builds")->capture_default_str();
  app.add_option("--log-bytes", s.log_bytes, "build output each job sends")->capture_default_str();
  app.add_option("--latency-requests", s.latency_requests, "GETs of each kind per sample")
      ->capture_default_str();
  app.add_option("--timeout", s.timeout_s, "seconds without a build ending before it gives up")
      ->capture_default_str();
  app.add_flag("--one-platform", s.one_platform,
               "builds for linux/amd64 alone (one job each), for more builds per second");
  app.add_flag("--registry-in-memory", registry_in_memory,
               "keep the registry's storage in /dev/shm (PostgreSQL stays on disk)");
  CLI11_PARSE(app, argc, argv);
  if (registry_in_memory) {
    char dir[] = "/dev/shm/soak-registry-XXXXXX";
    if (mkdtemp(dir) == nullptr)
      return Fail(std::string("mkdtemp in /dev/shm: ") + strerror(errno));
    s.registry_data = dir;
  }
  int status = Soak(s);
  std::error_code ignored;
  if (!s.registry_data.empty()) std::filesystem::remove_all(s.registry_data, ignored);
  return status;
}
