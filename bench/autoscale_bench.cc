// autoscale_bench: the local scaler against a burst of builds (issue 22).
//
// One farm (ops/farm.sh) with synthetic agents, amd64-1 and arm64-1, each build taking
// --build-ms; Prometheus scraping and evaluating every second. Each round runs the same
// burst (--builds arm64-only builds and --other-builds amd64-only ones, submitted at once)
// twice: without a scaler, one arm64 agent throughout, then with
// ops/autoscaling/local-scaler.sh (the recipes' steps; poll 1 s, scale-in after 5 s,
// --max agents), which afterwards drains back to its minimum of one before the next round.
// It prints each round and the medians over rounds of: from the first submit to the
// signal in Prometheus (manifold_desired_agents above the one agent), to the first new
// arm64 agent online and to the peak count; the queue wait (submit to the job leaving
// pending, seen through the API every 100 ms) p50 and p99 of the arm64 jobs, with and
// without the scaler; and the builds failed and jobs retried or requeued over all runs
// (goal 0).
//
// The time to the first agent splits in two: the signal's path (the coordinator sets its
// gauges every quarter heartbeat, Prometheus scrapes every second, the scaler polls every
// second) and the agent's start (ops/farm.sh add-agent: a key, the coordinator's key
// reload, the process, its hello). The first is the floor on one machine; with the
// recipes' 15 s polls and a cloud instance's boot it is minutes.
//
// Usage: autoscale_bench [--rounds=N] (3) [--build-ms=MS] (5000) [--builds=N] (6)
//        [--other-builds=N] (2) [--max=N] (4)
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench/load_generator.h"
#include "tests/support/farm.h"
#include "tests/support/ports.h"
#include "tests/support/scaling_burst.h"
#include "tests/support/subprocess.h"

namespace manifold {
namespace {

using Clock = std::chrono::steady_clock;
using bench::Percentile;
using test::BurstOptions;
using test::BurstResult;
using test::Farm;

struct Settings {
  int rounds = 3;
  int build_ms = 5000;
  int builds = 6;
  int other_builds = 2;
  int max_agents = 4;
};

struct Round {
  double signal_s = -1;  // first submit to Prometheus's value above one agent
  BurstResult with_scaler;
  BurstResult without_scaler;
};

double Median(std::vector<double> values) { return Percentile(std::move(values), 0.5); }

// Seconds from now until Prometheus first answers the query with more than `above`,
// polled every 100 ms on a thread until Stop().
class SignalWatch {
 public:
  SignalWatch(int port, double above) : start_(Clock::now()) {
    thread_ = std::thread([this, port, above] {
      while (!stop_) {
        std::optional<double> value = test::PrometheusValue(port, test::kArm64DesiredQuery);
        if (value && *value > above) {
          seconds_ = std::chrono::duration<double>(Clock::now() - start_).count();
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
  }
  ~SignalWatch() { Stop(); }
  double Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return seconds_;
  }

 private:
  const Clock::time_point start_;
  std::atomic<bool> stop_{false};
  double seconds_ = -1;
  std::thread thread_;
};

BurstOptions Burst(const Settings& settings, const std::string& tag, int settle_agents) {
  BurstOptions options;
  options.scaled_builds = settings.builds;
  options.other_builds = settings.other_builds;
  options.settle_agents = settle_agents;
  options.tag = tag;
  // One agent alone: every arm64 build in turn, plus a margin.
  options.timeout = std::chrono::milliseconds(settings.build_ms) * (settings.builds + 4) +
                    std::chrono::seconds(60);
  return options;
}

void PrintRun(const char* name, const BurstResult& run) {
  std::printf(
      "  %-8s agents %d -> peak %d; first new %.1f s, peak %.1f s, builds done %.1f s, "
      "back to 1 %.1f s; arm64 queue wait p50 %.1f s p99 %.1f s; %d succeeded, %d failed, "
      "%zu jobs retried%s%s\n",
      name, run.agents_at_start, run.peak_agents, run.first_new_s, run.peak_s, run.builds_done_s,
      run.settled_s, Percentile(run.scaled_queue_waits_s, 0.5),
      Percentile(run.scaled_queue_waits_s, 0.99), run.builds_succeeded, run.builds_failed,
      run.retried_jobs.size(), run.status.ok() ? "" : "; ",
      run.status.ok() ? "" : run.status.message().c_str());
}

int Run(const Settings& settings) {
  const int prometheus_port = test::FreeTcpPort();
  Farm farm(test::BurstFarmOptions(prometheus_port, settings.build_ms));
  Status up = farm.Up();
  if (up.ok()) up = farm.Start("prometheus");
  if (!up.ok()) {
    std::fprintf(stderr, "autoscale_bench: %s\n", up.message().c_str());
    return 1;
  }
  auto deadline = Clock::now() + std::chrono::seconds(30);
  while (!test::PrometheusValue(prometheus_port, test::kArm64DesiredQuery) &&
         Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  std::printf(
      "autoscale_bench: %d rounds; each %d arm64-only and %d amd64-only builds of %d ms at "
      "once; scaler max %d, poll 1 s, scale-in after 5 s\n",
      settings.rounds, settings.builds, settings.other_builds, settings.build_ms,
      settings.max_agents);

  std::vector<Round> rounds;
  bool complete = true;
  for (int r = 0; r < settings.rounds; ++r) {
    Round round;
    round.without_scaler =
        RunBurst(farm, Burst(settings, "without-" + std::to_string(r), /*settle_agents=*/0));
    test::Subprocess scaler;
    Status started = test::StartLocalScaler(scaler, farm, prometheus_port, settings.max_agents);
    if (!started.ok()) {
      std::fprintf(stderr, "autoscale_bench: %s\n", started.message().c_str());
      return 1;
    }
    SignalWatch signal(prometheus_port, 1);
    round.with_scaler =
        RunBurst(farm, Burst(settings, "with-" + std::to_string(r), /*settle_agents=*/1));
    round.signal_s = signal.Stop();
    scaler.Stop();
    std::printf("round %d: signal in Prometheus %.1f s\n", r + 1, round.signal_s);
    PrintRun("without", round.without_scaler);
    PrintRun("with", round.with_scaler);
    complete = complete && round.with_scaler.status.ok() && round.without_scaler.status.ok();
    rounds.push_back(std::move(round));
  }

  std::vector<double> signal, first_new, peak, peak_count, p50_with, p99_with, p50_without,
      p99_without;
  int failed = 0;
  size_t retried = 0;
  for (const Round& round : rounds) {
    signal.push_back(round.signal_s);
    first_new.push_back(round.with_scaler.first_new_s);
    peak.push_back(round.with_scaler.peak_s);
    peak_count.push_back(round.with_scaler.peak_agents);
    p50_with.push_back(Percentile(round.with_scaler.scaled_queue_waits_s, 0.5));
    p99_with.push_back(Percentile(round.with_scaler.scaled_queue_waits_s, 0.99));
    p50_without.push_back(Percentile(round.without_scaler.scaled_queue_waits_s, 0.5));
    p99_without.push_back(Percentile(round.without_scaler.scaled_queue_waits_s, 0.99));
    for (const BurstResult* run : {&round.with_scaler, &round.without_scaler}) {
      failed += run->builds_failed;
      retried += run->retried_jobs.size();
      for (const std::string& job : run->retried_jobs) std::printf("  retried: %s\n", job.c_str());
    }
  }
  std::printf(
      "medians over %d rounds:\n"
      "  burst to the signal in Prometheus:      %.1f s\n"
      "  burst to the first new agent online:    %.1f s\n"
      "  burst to the peak count (%.0f agents):    %.1f s\n"
      "  arm64 queue wait with the scaler:       p50 %.1f s, p99 %.1f s\n"
      "  arm64 queue wait with one agent:        p50 %.1f s, p99 %.1f s\n"
      "  builds failed: %d, jobs retried or requeued: %zu (all runs)\n",
      settings.rounds, Median(signal), Median(first_new), Median(peak_count), Median(peak),
      Median(p50_with), Median(p99_with), Median(p50_without), Median(p99_without), failed,
      retried);
  return complete && failed == 0 && retried == 0 ? 0 : 1;
}

}  // namespace
}  // namespace manifold

int main(int argc, char** argv) {
  manifold::Settings settings;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* flag) {
      return arg.rfind(flag, 0) == 0 ? std::atoi(arg.c_str() + std::string(flag).size()) : -1;
    };
    if (int v = value("--rounds="); v > 0) {
      settings.rounds = v;
    } else if (int v = value("--build-ms="); v > 0) {
      settings.build_ms = v;
    } else if (int v = value("--builds="); v > 0) {
      settings.builds = v;
    } else if (int v = value("--other-builds="); v >= 0) {
      settings.other_builds = v;
    } else if (int v = value("--max="); v > 0) {
      settings.max_agents = v;
    } else {
      std::fprintf(stderr,
                   "usage: autoscale_bench [--rounds=N] [--build-ms=MS] [--builds=N] "
                   "[--other-builds=N] [--max=N]\n");
      return 2;
    }
  }
  return manifold::Run(settings);
}
