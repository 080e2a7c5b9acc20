// failover_bench: several coordinators on one database (issue 20).
//
// Failover. PostgreSQL, docker-registry, two coordinators with the default lease
// (--leader-lease-ms 5000) on one database and one state dir, and one synthetic agent
// given both agent endpoints. Each round SIGKILLs the leader, submits a build through the
// other coordinator's API at once, and times, from the kill: until the other leads (its
// manifold_leader gauge), until it has dispatched the build's job (the job left pending),
// and until the build succeeded; then it starts the killed coordinator again, as the
// standby. Prints each round, the p50, p99 and max of each time, and the builds lost (not
// succeeded within 60 s). The floor is the lease: a standby may take it only once it has
// expired, which is between 2/3 and all of the lease after the kill (the leader renews
// every third), plus up to a fifth of the lease until the standby looks again; then the
// agent's reconnect (ZeroMQ backs off up to 2 s while no one binds) and one dispatch.
//
// Throughput. N builds on K synthetic agents, submitted by 4 threads through one
// coordinator's API with one coordinator running, then with two coordinators and the
// submits split between both APIs (the loop on the leader only), alternating for some
// rounds. Builds per second from the first submit to the last success, their medians and
// ratio, and, to name the bottleneck, how busy the machine was and the CPU seconds of the
// coordinators, the agents and the rest (PostgreSQL, the registry, this bench).
//
// Usage: failover_bench [--kills=N] (20; 0 skips to the throughput) [--builds=N] (200)
//        [--agents=N] (4) [--rounds=N] (3, of each throughput run)
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_farm.h"
#include "common/digest.h"
#include "common/tar.h"
#include "tests/support/coordinator_process.h"
#include "tests/support/farm.h"
#include "tests/support/postgres_server.h"
#include "tests/support/registry_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace manifold {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using test::CoordinatorProcess;
using test::Subprocess;
using test::TempDir;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Nearest rank.
double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t rank = static_cast<size_t>(p * static_cast<double>(values.size()) + 0.999999);
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

// CPU seconds the whole machine spent busy (all cores), from /proc/stat.
double MachineBusySeconds() {
  std::ifstream stat("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  return (user + nice + system + irq + softirq + steal) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "failover_bench: %s\n", why.c_str());
  std::exit(1);
}

template <typename F>
bool Await(F condition, std::chrono::milliseconds timeout) {
  const auto end = Clock::now() + timeout;
  while (Clock::now() < end) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

class Bench {
 public:
  Bench(int kills, int builds, int agents, int rounds)
      : kills_(kills), builds_(builds), agents_(agents), rounds_(rounds) {}

  void Main() {
    if (!postgres_.Start().ok()) Die("cannot start PostgreSQL");
    if (!registry_.Start().ok()) Die("cannot start the registry");
    a_ = Coordinator("coordinator-a");
    b_ = Coordinator("coordinator-b");
    Failover();
    Throughput();
  }

 private:
  std::unique_ptr<CoordinatorProcess> Coordinator(const std::string& name) {
    return std::make_unique<CoordinatorProcess>(
        name, postgres_.url(), dir_.path() + "/state",
        std::vector<std::string>{"--insecure-registry", registry_.host()},
        dir_.path() + "/" + name + ".log");
  }

  void StartAgent(Subprocess& agent, const std::string& name, const std::string& slots,
                  const std::string& build_ms) {
    Status started =
        agent.Start({test::BinaryDir() + "/agent/manifold-agent", "--coordinator",
                     a_->agent_endpoint() + "," + b_->agent_endpoint(), "--id", name, "--platform",
                     "linux/amd64", "--slots", slots, "--backend", "synthetic",
                     "--synthetic-build-ms", build_ms, "--insecure-registry", registry_.host(),
                     "--metrics-listen", "127.0.0.1:0", "--work-dir", dir_.path() + "/" + name},
                    {}, dir_.path() + "/" + name + ".log");
    if (!started.ok()) Die("cannot start agent " + name + ": " + started.message());
  }

  // Uploads the context once (the state dir is shared); a build request tagged `tag`.
  std::string Request(const std::string& tag) {
    if (context_.empty()) {
      std::string tar;
      if (!WriteTarFromDirectory(test::SourceDir() + "/examples/hello", {}, &tar).ok()) {
        Die("cannot pack examples/hello");
      }
      context_ = Sha256Digest(tar);
      if (a_->Request("PUT", "/v1/contexts/" + context_, tar, "application/x-tar").status != 201) {
        Die("cannot upload the context");
      }
    }
    return json{{"platforms", {"linux/amd64"}},
                {"tags", {registry_.host() + "/bench:" + tag}},
                {"context", context_},
                {"dockerfile", "FROM busybox\n"}}
        .dump();
  }

  static uint64_t Submit(const CoordinatorProcess& c, const std::string& request) {
    HttpResponse response = c.Request("POST", "/v1/builds", request);
    if (response.status != 201) return 0;
    return json::parse(response.body, nullptr, false).value("id", uint64_t{0});
  }

  static json Build(const CoordinatorProcess& c, uint64_t id) {
    return json::parse(c.Request("GET", "/v1/builds/" + std::to_string(id)).body, nullptr, false);
  }

  static bool AgentOn(const CoordinatorProcess& c, const std::string& agent) {
    json body = json::parse(c.Request("GET", "/v1/agents").body, nullptr, false);
    if (!body.is_object()) return false;
    for (const json& a : body.value("agents", json::array())) {
      if (a.value("id", "") == agent && a.value("state", "") == "online") return true;
    }
    return false;
  }

  void Failover() {
    if (!a_->Start().ok()) Die("cannot start coordinator-a");
    if (!Await([&] { return a_->Leading(); }, std::chrono::seconds(30))) Die("a does not lead");
    if (!b_->Start().ok()) Die("cannot start coordinator-b");
    Subprocess agent;
    StartAgent(agent, "agent-1", "2", "300");
    std::vector<double> to_lead, to_dispatch, to_success;
    int lost = 0;
    std::printf("failover: %d kills of the leader, default lease (5000 ms)\n", kills_);
    std::printf("%5s  %-14s  %8s  %12s  %11s\n", "round", "killed", "leads s", "dispatched s",
                "succeeded s");
    for (int round = 1; round <= kills_; ++round) {
      CoordinatorProcess& leader = a_->Leading() ? *a_ : *b_;
      CoordinatorProcess& standby = &leader == a_.get() ? *b_ : *a_;
      const std::string request = Request("failover-" + std::to_string(round));
      if (!Await([&] { return standby.Ready() && !standby.Leading(); }, std::chrono::seconds(30)) ||
          !Await([&] { return AgentOn(leader, "agent-1"); }, std::chrono::seconds(30))) {
        Die("round " + std::to_string(round) + ": the farm did not settle");
      }
      const Clock::time_point killed = Clock::now();
      ::kill(leader.process().pid(), SIGKILL);
      leader.process().Wait(std::chrono::seconds(10));
      const uint64_t id = Submit(standby, request);
      if (id == 0) Die("round " + std::to_string(round) + ": the standby's API took no build");
      Clock::time_point led{}, dispatched{}, succeeded{};
      Await(
          [&] {
            if (led == Clock::time_point{} && standby.Leading()) led = Clock::now();
            json build = Build(standby, id);
            if (!build.is_object() || build["jobs"].empty()) return false;
            if (dispatched == Clock::time_point{} && build["jobs"][0]["state"] != "pending") {
              dispatched = Clock::now();
            }
            if (build.value("state", "") == "succeeded") succeeded = Clock::now();
            return succeeded != Clock::time_point{};
          },
          std::chrono::seconds(60));
      if (succeeded == Clock::time_point{}) {
        ++lost;
      } else {
        to_lead.push_back(Seconds(led - killed));
        to_dispatch.push_back(Seconds(dispatched - killed));
        to_success.push_back(Seconds(succeeded - killed));
      }
      std::printf("%5d  %-14s  %8.2f  %12.2f  %11.2f\n", round, leader.name().c_str(),
                  Seconds(led - killed), Seconds(dispatched - killed), Seconds(succeeded - killed));
      std::fflush(stdout);
      if (!leader.Start().ok()) Die("cannot start " + leader.name() + " again");
    }
    if (kills_ == 0) return;
    std::printf("kill -> leads:      p50 %.2f s  p99 %.2f s  max %.2f s\n",
                Percentile(to_lead, 0.5), Percentile(to_lead, 0.99), Percentile(to_lead, 1));
    std::printf("kill -> dispatched: p50 %.2f s  p99 %.2f s  max %.2f s  (goal: p99 < 10 s)\n",
                Percentile(to_dispatch, 0.5), Percentile(to_dispatch, 0.99),
                Percentile(to_dispatch, 1));
    std::printf("kill -> succeeded:  p50 %.2f s  p99 %.2f s\n", Percentile(to_success, 0.5),
                Percentile(to_success, 0.99));
    std::printf("builds lost: %d of %d (goal: 0)\n\n", lost, kills_);
    agent.Stop();
  }

  // One run of builds_ builds; `apis` are the coordinators whose APIs take the submits.
  // Returns builds per second.
  double Run(const std::string& label, const std::vector<CoordinatorProcess*>& apis) {
    std::vector<std::unique_ptr<Subprocess>> agents;
    for (int i = 0; i < agents_; ++i) {
      agents.push_back(std::make_unique<Subprocess>());
      StartAgent(*agents.back(), label + "-agent-" + std::to_string(i), "4", "0");
    }
    CoordinatorProcess& leader = a_->Leading() ? *a_ : *b_;
    for (int i = 0; i < agents_; ++i) {
      if (!Await([&] { return AgentOn(leader, label + "-agent-" + std::to_string(i)); },
                 std::chrono::seconds(30))) {
        Die(label + ": agents did not come online");
      }
    }
    std::vector<pid_t> pids = {a_->process().pid(), b_->process().pid()};
    auto cpu = [&](pid_t pid) {
      Result<bench::ProcessSample> sample = bench::SampleProcess(pid);
      return sample.ok() ? sample->cpu_seconds : 0.0;
    };
    auto agents_cpu = [&] {
      double total = 0;
      for (auto& agent : agents) total += cpu(agent->pid());
      return total;
    };
    const double a0 = cpu(pids[0]), b0 = cpu(pids[1]), agents0 = agents_cpu();
    const double machine0 = MachineBusySeconds();
    std::vector<uint64_t> ids(builds_, 0);
    std::atomic<int> next{0};
    const Clock::time_point start = Clock::now();
    std::vector<std::thread> submitters;
    for (int t = 0; t < 4; ++t) {
      submitters.emplace_back([&] {
        for (int i = next++; i < builds_; i = next++) {
          const CoordinatorProcess& api = *apis[i % apis.size()];
          ids[i] = Submit(api, Request(label + "-" + std::to_string(i)));
        }
      });
    }
    for (std::thread& t : submitters) t.join();
    const Clock::time_point submitted = Clock::now();
    int done = 0;
    Await(
        [&] {
          json list =
              json::parse(leader.Request("GET", "/v1/builds?limit=" + std::to_string(builds_)).body,
                          nullptr, false);
          done = 0;
          for (const json& build : list.is_object() ? list.value("builds", json::array()) : list) {
            if (build.value("state", "") == "succeeded" &&
                build["tags"][0].get<std::string>().find("/bench:" + label + "-") !=
                    std::string::npos) {
              ++done;
            }
          }
          return done == builds_;
        },
        std::chrono::seconds(600));
    const double wall = Seconds(Clock::now() - start);
    const double a = cpu(pids[0]) - a0, b = cpu(pids[1]) - b0, agent_cpu = agents_cpu() - agents0;
    const double machine = MachineBusySeconds() - machine0;
    const double cores = static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN));
    std::printf(
        "%-6s %4d builds  %5.1f s (submits %.1f s)  %5.1f builds/s  lost %d  machine busy "
        "%3.0f%%  cpu s: coordinator-a %.1f, coordinator-b %.1f, agents %.1f, the rest "
        "(PostgreSQL, registry, this bench) %.1f\n",
        label.c_str(), builds_, wall, Seconds(submitted - start), done / wall, builds_ - done,
        100 * machine / (wall * cores), a, b, agent_cpu, machine - a - b - agent_cpu);
    std::fflush(stdout);
    for (auto& agent : agents) agent->Stop();
    return done / wall;
  }

  // Rounds of one coordinator, then two, alternating, so drift hits both alike.
  void Throughput() {
    std::printf(
        "throughput: %d builds a run, %d synthetic agents x 4 slots, 4 submitting "
        "threads, %d rounds\n",
        builds_, agents_, rounds_);
    CoordinatorProcess& leader = a_->Leading() ? *a_ : *b_;
    CoordinatorProcess& standby = &leader == a_.get() ? *b_ : *a_;
    std::vector<double> one, two;
    for (int round = 1; round <= rounds_; ++round) {
      standby.process().Stop();
      one.push_back(Run("one-" + std::to_string(round), {&leader}));
      if (!standby.Start().ok()) Die("cannot start " + standby.name());
      if (!Await([&] { return standby.Ready(); }, std::chrono::seconds(30))) Die("no standby");
      two.push_back(Run("two-" + std::to_string(round), {&leader, &standby}));
    }
    const double median_one = Percentile(one, 0.5), median_two = Percentile(two, 0.5);
    std::printf(
        "median builds/s: one coordinator %.1f, two %.1f: two/one %.2fx (goal: not "
        "below 1)\n",
        median_one, median_two, median_two / median_one);
  }

  const int kills_, builds_, agents_, rounds_;
  TempDir dir_{"manifold-failover-bench"};
  test::PostgresServer postgres_;
  test::RegistryServer registry_;
  std::unique_ptr<CoordinatorProcess> a_, b_;
  std::string context_;
};

}  // namespace
}  // namespace manifold

int main(int argc, char** argv) {
  int kills = 20, builds = 200, agents = 4, rounds = 3;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--kills=", 0) == 0) {
      kills = std::atoi(arg.c_str() + 8);
    } else if (arg.rfind("--builds=", 0) == 0) {
      builds = std::atoi(arg.c_str() + 9);
    } else if (arg.rfind("--agents=", 0) == 0) {
      agents = std::atoi(arg.c_str() + 9);
    } else if (arg.rfind("--rounds=", 0) == 0) {
      rounds = std::atoi(arg.c_str() + 9);
    } else {
      std::fprintf(stderr,
                   "usage: failover_bench [--kills=N] [--builds=N] [--agents=N] [--rounds=N]\n");
      return 2;
    }
  }
  if (kills < 0 || builds < 1 || agents < 1 || rounds < 1) {
    std::fprintf(stderr,
                 "failover_bench: --builds, --agents and --rounds must be at least 1, --kills at "
                 "least 0\n");
    return 2;
  }
  manifold::Bench(kills, builds, agents, rounds).Main();
  return 0;
}
