// cache_bench: what the per-platform registry cache of issue 19 buys a fresh agent.
//
// A real farm (ops/farm.sh: PostgreSQL, docker-registry, the coordinator) with two buildah
// agents per platform, A and B; linux/arm64 is emulated (QEMU) on an x86-64 host. The
// project's Dockerfile has `ARG TARGETARCH` and `COPY . .` before an expensive RUN step (a
// shell loop of --loop iterations: tens of seconds of CPU natively). Each round, on each
// platform, with a new line in the step so that nothing is cached from an earlier round:
//   cold      A with an empty store, no cache flags;
//   (push)    A again, now warm, with --cache-to: writes the platform's registry cache;
//   registry  A drains; B starts with an empty store and without warm start
//             (MANIFOLD_WARM_START=false), and builds with --cache-from: the job loads the
//             cache;
//   warm      B again, as a CI pipeline would, with the same --cache-from;
//   fresh     B starts again with an empty store, now with warm start: it loads the
//             farm's recent caches of its platform as it joins (agent/warm_start.h); once
//             its log says the warm start is done, the same build, as on a fleet that
//             scaled out ahead of the jobs.
// Each figure is the wall time of `manifold build` (submit to index pushed), as CI sees it,
// and the fresh agent's warm start is timed from its start to that log line. Prints every
// run, then per platform the medians, the ratios (registry/warm and fresh/warm against
// the goal of 1.5x, cold/registry against at least 5x), and, to name the bottleneck, the
// CPU seconds each process used during the median runs: the agent with the buildah and
// QEMU processes it ran, the registry, the coordinator.
//
// Usage: cache_bench [--rounds=N] (default 3) [--loop=N] (default 12000000)
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/farm.h"
#include "tests/support/temp_dir.h"

namespace manifold {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "cache_bench: %s\n", message.c_str());
  std::exit(1);
}

// CPU seconds a process and its reaped children used (utime, stime, cutime, cstime).
double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t end = stat.rfind(')');
  if (end == std::string::npos) return 0;
  std::vector<std::string> fields;
  std::string field;
  for (size_t i = end + 2; i <= stat.size(); ++i) {
    if (i == stat.size() || stat[i] == ' ') {
      fields.push_back(field);
      field.clear();
    } else {
      field += stat[i];
    }
  }
  // Fields after the command: state is 0, utime 11, stime 12, cutime 13, cstime 14.
  if (fields.size() < 15) return 0;
  double ticks = 0;
  for (int i : {11, 12, 13, 14}) ticks += std::stod(fields[i]);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct Platform {
  std::string name;  // linux/amd64
  std::string arch;  // amd64
};

struct Run {
  double seconds = 0;
  std::map<std::string, double> cpu;  // by process: agent, registry, coordinator
};

class Bench {
 public:
  Bench(int rounds, long loop) : rounds_(rounds), loop_(loop) {}

  void Main() {
    test::FarmOptions options;
    for (const Platform& p : kPlatforms) {
      options.agents.push_back("a-" + p.arch + ":" + p.name);
      options.agents.push_back("b-" + p.arch + ":" + p.name);
    }
    farm_ = std::make_unique<test::Farm>(options);
    if (Status up = farm_->Up(); !up.ok()) Die("the farm did not come up: " + up.message());
    std::printf("cache_bench: %d round(s), RUN step of %ld loop iterations, %ld cores\n", rounds_,
                loop_, sysconf(_SC_NPROCESSORS_ONLN));
    for (int round = 1; round <= rounds_; ++round) {
      for (const Platform& p : kPlatforms) Round(p, round);
    }
    Report();
  }

 private:
  static inline const std::vector<Platform> kPlatforms = {{"linux/amd64", "amd64"},
                                                          {"linux/arm64", "arm64"}};

  // Starts `name` with an empty container store and work dir, as a new node would, with or
  // without its warm start.
  void StartFresh(const std::string& name, bool warm_start) {
    StopIfRunning(name);
    const std::string agent = farm_->dir() + "/farm/agents/" + name;
    for (const char* part : {"storage/graph", "storage/run", "work"}) {
      std::error_code ec;
      fs::remove_all(agent + "/" + part, ec);
      fs::create_directories(agent + "/" + part, ec);
    }
    if (Status s = farm_->Start(name, {{"MANIFOLD_WARM_START", warm_start ? "true" : "false"}});
        !s.ok()) {
      Die("cannot start " + name + ": " + s.message());
    }
  }
  // Seconds until `name`'s log says its warm start is done (it loaded what it was told of).
  double AwaitWarmStart(const std::string& name, Clock::time_point since) {
    // The log goes on across starts, each after a "---- farm: starting" line.
    auto done = [&] {
      std::string tail = farm_->LogTail(name);
      size_t restart = tail.rfind("---- farm: starting");
      return tail.find("warm start: loaded", restart == std::string::npos ? 0 : restart) !=
             std::string::npos;
    };
    while (!done()) {
      if (Clock::now() - since > std::chrono::minutes(10)) Die(name + ": no warm start in 10 min");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return std::chrono::duration<double>(Clock::now() - since).count();
  }
  void StopIfRunning(const std::string& name) {
    if (farm_->Pid(name) == 0) return;
    if (Status s = farm_->Stop(name); !s.ok()) Die("cannot stop " + name + ": " + s.message());
  }

  Run Build(const Platform& p, const std::string& agent, const std::string& project,
            const std::string& tag, const std::vector<std::string>& flags,
            const std::string& must_say) {
    std::vector<std::string> args = {
        "build", "--platform", p.name, "-t", farm_->registry() + "/" + tag, "--progress", "plain"};
    args.insert(args.end(), flags.begin(), flags.end());
    args.push_back(project);
    const std::map<std::string, pid_t> pids = {{"agent", farm_->Pid(agent)},
                                               {"registry", farm_->Pid("registry")},
                                               {"coordinator", farm_->Pid("coordinator")}};
    std::map<std::string, double> before;
    for (const auto& [name, pid] : pids) before[name] = CpuSeconds(pid);
    auto start = Clock::now();
    test::CommandResult built = farm_->Manifold(args, std::chrono::seconds(1800));
    Run run;
    run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    for (const auto& [name, pid] : pids) run.cpu[name] = CpuSeconds(pid) - before[name];
    if (built.exit_code != 0) Die("the build of " + tag + " failed:\n" + built.output);
    if (!must_say.empty() && built.output.find(must_say) == std::string::npos) {
      Die("the build of " + tag + " did not say \"" + must_say + "\":\n" + built.output);
    }
    return run;
  }

  void Round(const Platform& p, int round) {
    const std::string a = "a-" + p.arch;
    const std::string b = "b-" + p.arch;
    test::TempDir project("manifold-cache-bench");
    const std::string marker = "round" + std::to_string(round) + "-" + std::to_string(getpid());
    std::ofstream(project.path() + "/Dockerfile")
        << "FROM busybox\n"
           "ARG TARGETARCH\n"
           "COPY . /src\n"
           "RUN i=0; while [ $i -lt "
        << loop_ << " ]; do i=$((i+1)); done; echo " << marker << "-$TARGETARCH > /expensive\n";
    std::ofstream(project.path() + "/main.c") << "int main(void) { return 0; }\n";
    const std::string cache = farm_->registry() + "/bench-cache/" + marker;
    const std::string repo = "bench/" + marker;

    StopIfRunning(b);
    StartFresh(a, false);
    Run cold = Build(p, a, project.path(), repo + ":cold", {}, "");
    Build(p, a, project.path(), repo + ":push", {"--cache-to", "type=registry,ref=" + cache},
          "pushed registry cache");
    StopIfRunning(a);
    StartFresh(b, false);
    const std::vector<std::string> from = {"--cache-from", "type=registry,ref=" + cache};
    Run registry = Build(p, b, project.path(), repo + ":registry", from, "fetched registry cache");
    Run warm = Build(p, b, project.path(), repo + ":warm", from, "");
    const auto started = Clock::now();
    StartFresh(b, true);
    const double warm_start = AwaitWarmStart(b, started);
    Run fresh = Build(p, b, project.path(), repo + ":fresh", from, "in this agent's store already");
    std::printf(
        "%s round %d: cold %.1f s, registry %.1f s, warm %.1f s, fresh after its warm start "
        "%.1f s (warm start done %.1f s after the agent's start)\n",
        p.name.c_str(), round, cold.seconds, registry.seconds, warm.seconds, fresh.seconds,
        warm_start);
    std::fflush(stdout);
    runs_[p.name]["cold"].push_back(cold);
    runs_[p.name]["registry"].push_back(registry);
    runs_[p.name]["warm"].push_back(warm);
    runs_[p.name]["fresh"].push_back(fresh);
    warm_starts_[p.name].push_back(warm_start);
  }

  static const Run& Median(std::vector<Run>& runs) {
    std::sort(runs.begin(), runs.end(),
              [](const Run& x, const Run& y) { return x.seconds < y.seconds; });
    return runs[runs.size() / 2];
  }

  void Report() {
    std::printf(
        "\n| platform | cold | registry cache | warm | fresh, warm-started | registry/warm | "
        "fresh/warm (goal <= 1.5) | cold/registry (goal >= 5) | warm start took |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    std::string cpu;
    for (const Platform& p : kPlatforms) {
      auto& kinds = runs_[p.name];
      const Run& cold = Median(kinds["cold"]);
      const Run& registry = Median(kinds["registry"]);
      const Run& warm = Median(kinds["warm"]);
      const Run& fresh = Median(kinds["fresh"]);
      std::vector<double>& starts = warm_starts_[p.name];
      std::sort(starts.begin(), starts.end());
      const double to_warm = fresh.seconds / warm.seconds;
      const double from_cold = cold.seconds / registry.seconds;
      std::printf(
          "| %s | %.1f s | %.1f s | %.1f s | %.1f s | %.2fx | %.2fx %s | %.1fx %s | %.1f s |\n",
          p.name.c_str(), cold.seconds, registry.seconds, warm.seconds, fresh.seconds,
          registry.seconds / warm.seconds, to_warm, to_warm <= 1.5 ? "met" : "NOT met", from_cold,
          from_cold >= 5 ? "met" : "NOT met", starts[starts.size() / 2]);
      for (const auto& [kind, run] : std::map<std::string, const Run*>{
               {"cold", &cold}, {"registry", &registry}, {"warm", &warm}, {"fresh", &fresh}}) {
        char line[256];
        std::snprintf(line, sizeof line,
                      "%s %s (%.1f s): agent with its buildah/QEMU %.1f, registry %.1f, "
                      "coordinator %.1f CPU s\n",
                      p.name.c_str(), kind.c_str(), run->seconds, run->cpu.at("agent"),
                      run->cpu.at("registry"), run->cpu.at("coordinator"));
        cpu += line;
      }
    }
    std::printf(
        "\nCPU seconds used during the median runs (the farm's %ld cores are the "
        "ceiling):\n%s",
        sysconf(_SC_NPROCESSORS_ONLN), cpu.c_str());
  }

  const int rounds_;
  const long loop_;
  std::unique_ptr<test::Farm> farm_;
  std::map<std::string, std::map<std::string, std::vector<Run>>> runs_;
  std::map<std::string, std::vector<double>> warm_starts_;  // seconds, by platform
};

}  // namespace
}  // namespace manifold

int main(int argc, char** argv) {
  int rounds = 3;
  long loop = 12000000;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--rounds=", 0) == 0) {
      rounds = std::atoi(arg.c_str() + 9);
    } else if (arg.rfind("--loop=", 0) == 0) {
      loop = std::atol(arg.c_str() + 7);
    } else {
      std::fprintf(stderr, "usage: cache_bench [--rounds=N] [--loop=N]\n");
      return 2;
    }
  }
  if (rounds < 1 || loop < 1) {
    std::fprintf(stderr, "cache_bench: --rounds and --loop must be at least 1\n");
    return 2;
  }
  manifold::Bench(rounds, loop).Main();
  return 0;
}
