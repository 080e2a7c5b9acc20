// sandbox_bench: what the sandbox of issue 17 costs per RUN step on a buildah agent.
//
// One working container (FROM scratch plus the host's static busybox, as ops/base-image.sh
// builds the farm's base image, with no registry needed) and `buildah run CONTAINER
// busybox true`, the part of a RUN step that the isolation changes, under three modes that
// take turns in each round:
//   chroot     --isolation chroot (the agents' setting before the sandbox)
//   oci-none   --isolation oci --network none (runc: PID, mount, IPC, UTS, network
//              namespaces and a cgroup per step)
//   oci-cni    --isolation oci on a private CNI bridge network (a bridge of its own from a
//              temporary CNI config dir, host-local addresses, no NAT: nothing leaves it)
// and, to find where the time goes, the parts on their own: one buildah and one runc
// process start (`--version`), `runc run` of a bundle with the same busybox (runc's
// fork/exec, namespaces, cgroup and pivot_root, without buildah) and `unshare` of the same
// namespaces (their creation alone). Prints p50 and p90 of each,
// the ratios to chroot, and the bottleneck. Needs root, buildah, runc, util-linux's
// unshare, iproute2 and the CNI plugins in /usr/lib/cni. Single-threaded; a run that ends
// well leaves nothing behind (its container, storage, runc state, bridge and CNI state).
//
// Usage: sandbox_bench [--runs=N] (default 30)
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace manifold {
namespace {

using Clock = std::chrono::steady_clock;
using Env = std::map<std::string, std::string>;
// Every command here is short: a hang is a broken host, not a slow step.
constexpr auto kCommandTimeout = std::chrono::minutes(2);

// Ends the benchmark at once, leaving its temp dir (manifold-sandbox-bench-*) and bridge
// (mfsb<pid>) for a look.
[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "sandbox_bench: %s\n", message.c_str());
  std::exit(1);
}

std::string Run(const std::vector<std::string>& argv, const Env& env) {
  test::CommandResult r = test::RunCommand(argv, kCommandTimeout, env);
  if (r.exit_code != 0) Die(argv[0] + " " + argv[1] + " failed:\n" + r.output);
  return r.output;
}

// Seconds one run of argv takes, wall clock.
double TimeRun(const std::vector<std::string>& argv, const Env& env) {
  Clock::time_point start = Clock::now();
  Run(argv, env);
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Mode {
  std::string name;
  std::vector<std::string> argv;
  std::vector<double> seconds;
};

// Nearest-rank p50 and p90 of the mode's runs, in milliseconds.
std::pair<double, double> P50P90(std::vector<double> s) {
  std::sort(s.begin(), s.end());
  auto at = [&](double q) {
    size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(s.size())));
    return 1000 * s[std::clamp<size_t>(rank, 1, s.size()) - 1];
  };
  return {at(0.5), at(0.9)};
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream(path) << content;
}

// A /24 in 10.213.0.0/16 that no interface or route of this host uses, for the bench's
// bridge, so that it cannot shadow a network someone else set up.
std::string FreeSubnet() {
  std::string used = Run({"ip", "-4", "route", "show", "table", "all"}, {}) +
                     Run({"ip", "-4", "addr", "show"}, {});
  for (int n = 0; n < 256; ++n) {
    std::string prefix = "10.213." + std::to_string(n) + ".";
    if (used.find(prefix) == std::string::npos) return prefix + "0/24";
  }
  Die("no free /24 in 10.213.0.0/16 for the benchmark's bridge");
}

// Deletes the benchmark's bridge when the run ends (the CNI bridge plugin leaves it).
struct BridgeCleanup {
  std::string name;
  ~BridgeCleanup() { test::RunCommand({"ip", "link", "del", name}, kCommandTimeout); }
};

}  // namespace
}  // namespace manifold

int main(int argc, char** argv) {
  using namespace manifold;
  int runs = 30;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--runs=", 0) == 0) runs = std::max(2, std::atoi(arg.c_str() + 7));
  }
  if (geteuid() != 0) Die("needs root (buildah and runc make namespaces and cgroups)");
  const char* busybox = "/bin/busybox";
  if (access(busybox, X_OK) != 0) Die("no static busybox at /bin/busybox (busybox-static)");

  test::TempDir dir("manifold-sandbox-bench");
  const std::string d = dir.path();
  WriteFile(d + "/storage.conf", "[storage]\ndriver = \"vfs\"\nrunroot = \"" + d +
                                     "/run\"\ngraphroot = \"" + d + "/graph\"\n");
  // buildah 1.28 finds CNI networks through containers.conf only (--cni-config-dir is not
  // used by `buildah run`'s network lookup).
  const std::string subnet = FreeSubnet();
  BridgeCleanup bridge{"mfsb" + std::to_string(getpid())};
  std::filesystem::create_directories(d + "/cni");
  const std::string conflist =
      R"({"cniVersion": "0.4.0", "name": "manifold-bench", "plugins": [{"type": "bridge",
          "bridge": ")" +
      bridge.name + R"(", "isGateway": true, "ipMasq": false,
          "ipam": {"type": "host-local", "dataDir": ")" +
      d + R"(/cni-state",
                   "ranges": [[{"subnet": ")" +
      subnet + R"("}]]}}]})";
  WriteFile(d + "/cni/manifold-bench.conflist", conflist);
  WriteFile(d + "/containers.conf",
            "[network]\nnetwork_backend = \"cni\"\nnetwork_config_dir = \"" + d +
                "/cni\"\ncni_plugin_dirs = [\"/usr/lib/cni\"]\n");
  const Env env = {{"CONTAINERS_STORAGE_CONF", d + "/storage.conf"},
                   {"CONTAINERS_CONF", d + "/containers.conf"}};

  std::string container = Run({"buildah", "from", "--name", "sandbox-bench", "scratch"}, env);
  container = container.substr(0, container.find('\n'));
  Run({"buildah", "copy", container, busybox, "/bin/busybox"}, env);
  // The same busybox as a runc bundle: config.json from `runc spec`, running `busybox true`
  // without a terminal.
  const std::string bundle = d + "/bundle";
  std::filesystem::create_directories(bundle + "/rootfs/bin");
  std::filesystem::copy_file(busybox, bundle + "/rootfs/bin/busybox");
  Run({"runc", "spec", "--bundle", bundle}, env);
  nlohmann::json spec = nlohmann::json::parse(std::ifstream(bundle + "/config.json"));
  spec["process"]["terminal"] = false;
  spec["process"]["args"] = {"/bin/busybox", "true"};
  WriteFile(bundle + "/config.json", spec.dump());

  const std::vector<std::string> step = {container, "/bin/busybox", "true"};
  auto buildah_run = [&](std::vector<std::string> flags) {
    std::vector<std::string> argv = {"buildah", "run"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.insert(argv.end(), step.begin(), step.end());
    return argv;
  };
  std::vector<Mode> modes = {
      {"chroot", buildah_run({"--isolation", "chroot"}), {}},
      {"oci-none", buildah_run({"--isolation", "oci", "--network", "none"}), {}},
      {"oci-cni", buildah_run({"--isolation", "oci", "--network", "manifold-bench"}), {}},
      {"buildah --version", {"buildah", "--version"}, {}},
      {"runc --version", {"runc", "--version"}, {}},
      // `runc run` in the foreground deletes its container on exit, so one id serves all.
      {"runc run", {"runc", "--root", d + "/runc", "run", "--bundle", bundle, "sandbox-bench"}, {}},
      {"unshare",
       {"unshare", "--pid", "--fork", "--mount", "--uts", "--ipc", "--net", busybox, "true"},
       {}},
  };
  // A warm-up round (first runs pay for page cache and the bridge's creation), then the
  // modes take turns, so drift on a shared machine spreads over all of them.
  for (int round = -1; round < runs; ++round) {
    for (Mode& mode : modes) {
      double seconds = TimeRun(mode.argv, env);
      if (round >= 0) mode.seconds.push_back(seconds);
    }
  }
  Run({"buildah", "rm", container}, env);

  std::printf("sandbox_bench: %d runs per mode, trivial step `busybox true`, %ld CPUs\n", runs,
              sysconf(_SC_NPROCESSORS_ONLN));
  std::map<std::string, double> p50;
  for (const Mode& mode : modes) {
    auto [median, p90] = P50P90(mode.seconds);
    p50[mode.name] = median;
    std::printf("  %-18s p50 %7.1f ms   p90 %7.1f ms\n", mode.name.c_str(), median, p90);
  }
  const double oci_cost = p50["oci-none"] - p50["chroot"];
  const double cni_cost = p50["oci-cni"] - p50["oci-none"];
  std::printf("ratio oci-none/chroot %.2fx, oci-cni/chroot %.2fx\n",
              p50["oci-none"] / p50["chroot"], p50["oci-cni"] / p50["chroot"]);
  std::printf("per step: oci instead of chroot %+.0f ms, the CNI bridge %+.0f ms more\n", oci_cost,
              cni_cost);
  std::printf(
      "parts: one buildah process %.0f ms, one runc process %.0f ms, a bare `runc run` "
      "%.0f ms, creating the namespaces %.0f ms\n",
      p50["buildah --version"], p50["runc --version"], p50["runc run"], p50["unshare"]);
  // Each `buildah run` re-executes buildah several times (chroot: its chroot runtime and
  // exec helpers; oci: its oci runtime, then runc create/start/delete), so a step's time
  // is mostly process starts, in every mode; what the sandbox adds is runc's processes
  // (against chroot's extra buildah ones) and the CNI setup.
  std::printf("bottleneck of a step: %s\n",
              p50["buildah --version"] > p50["unshare"]
                  ? "process starts (buildah re-executing itself, runc), not the kernel's "
                    "namespace work"
                  : "namespace creation in the kernel");
  std::printf("bottleneck of the sandbox's added cost: %s\n",
              cni_cost > oci_cost
                  ? "the CNI network setup (netns, veth, bridge and IPAM plugin processes)"
                  : "runc (its processes, namespaces, cgroup and mounts)");
  return 0;
}
