// registry_bench: how manifold's registry code compares with the tools people would use
// instead, run on one machine against one local docker-registry.
//
//   1. Push of an OCI image layout with a 256 MiB layer: RegistryClient::PushLayout versus
//      `skopeo copy oci:DIR:TAG docker://...`.
//   2. Creating and pushing a two-platform index: `manifold imagetools create` versus
//      `docker manifest create` + `docker manifest push` and `buildah manifest create/add/
//      push`.
//
// Every run uses a fresh registry (so no tool finds blobs it pushed before, and skopeo's
// blob-location cache cannot turn uploads into mounts) and the figures are medians of
// --runs runs (default 5), the tools taking turns in each round. Prints one line per
// measurement (for the merge also the CPU time the tool's processes used) and the ratios,
// and, to read the merge figures by, what starting each program costs on its own. The registry
// keeps its storage under $TMPDIR (default /tmp). Single-threaded.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/layout.h"
#include "common/registry.h"
#include "tests/support/push_image.h"
#include "tests/support/registry_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_image.h"

namespace manifold {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kCommandTimeout = std::chrono::minutes(10);

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "registry_bench: %s\n", message.c_str());
  std::exit(1);
}

void Check(const Status& s, const std::string& what) {
  if (!s.ok()) Die(what + ": " + s.message());
}

void Run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {}) {
  test::CommandResult r = test::RunCommand(argv, kCommandTimeout, env);
  if (r.exit_code != 0) Die(argv[0] + " " + argv[1] + " failed:\n" + r.output);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

using Body = std::function<void(const test::RegistryServer&)>;

// CPU seconds (user + system) used so far by this process and the children it has
// waited for: the tools run as children (reaped by RunCommand) or in this process, while
// the registry, reaped only when stopped, stays out of the count.
double CpuSeconds() {
  double total = 0;
  for (int who : {RUSAGE_SELF, RUSAGE_CHILDREN}) {
    struct rusage usage;
    getrusage(who, &usage);
    total += static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
             static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  }
  return total;
}

// Medians of one tool's runs: elapsed time, and the CPU time its processes used (which the
// load of a shared machine disturbs far less).
struct Figure {
  double seconds = 0;
  double cpu_seconds = 0;
};

// Times each of `bodies` once per round, each time on a fresh registry prepared by
// `setup`, and returns their medians. The tools take turns within every round, so a
// change in the machine's load during the benchmark weighs on all of them alike.
std::vector<Figure> MedianSeconds(int runs, const Body& setup, const std::vector<Body>& bodies) {
  std::vector<std::vector<double>> seconds(bodies.size());
  std::vector<std::vector<double>> cpu(bodies.size());
  for (int i = 0; i < runs; ++i) {
    for (size_t b = 0; b < bodies.size(); ++b) {
      test::RegistryServer registry;
      Check(registry.Start(), "start docker-registry");
      setup(registry);
      const double cpu_before = CpuSeconds();
      const auto begin = Clock::now();
      bodies[b](registry);
      seconds[b].push_back(std::chrono::duration<double>(Clock::now() - begin).count());
      cpu[b].push_back(CpuSeconds() - cpu_before);
    }
  }
  std::vector<Figure> medians;
  for (size_t b = 0; b < bodies.size(); ++b) {
    medians.push_back({Median(seconds[b]), Median(cpu[b])});
  }
  return medians;
}

RegistryOptions Hermetic(const test::TempDir& dir) {
  RegistryOptions options;
  options.docker_config_dir = dir.path();
  options.certs_dir = dir.path() + "/certs.d";
  return options;
}

}  // namespace
}  // namespace manifold

int main(int argc, char** argv) {
  using namespace manifold;
  int runs = 5;
  int layer_mib = 256;
  bool merge_only = false;  // skip the (long) push comparison
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--runs=", 0) == 0) runs = std::max(1, std::atoi(arg.c_str() + 7));
    if (arg.rfind("--layer-mib=", 0) == 0) layer_mib = std::max(1, std::atoi(arg.c_str() + 12));
    if (arg == "--merge-only") merge_only = true;
  }
  test::TempDir dir("manifold-bench");
  const std::map<std::string, std::string> env = {{"DOCKER_CONFIG", dir.path()}};

  // 1. A layout with one big layer (pseudo-random bytes: compressible data would flatter
  // nobody, since no tool here recompresses).
  std::string content(merge_only ? 0 : static_cast<size_t>(layer_mib) << 20, '\0');
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i + 8 <= content.size(); i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(&content[i], &x, 8);
  }
  const std::string layout_dir = dir.path() + "/layout";
  {
    test::TestImage image = test::MakeTestImage({"linux", "amd64", ""}, content);
    content.clear();
    content.shrink_to_fit();
    Check(test::WriteTestLayout(layout_dir, {{&image, "big"}}), "write layout");
  }
  Result<OciLayoutImage> layout = OpenLayoutImage(layout_dir, "big");
  Check(layout.status(), "open layout");

  auto none = [](const test::RegistryServer&) {};
  std::vector<Figure> push = {{}, {}};
  if (!merge_only) {
    push = MedianSeconds(
        runs, none,
        {[&](const test::RegistryServer& r) {
           RegistryClient client(r.host(), Hermetic(dir));
           Check(client.PushLayout(*layout, "bench/big").status(), "manifold push");
         },
         [&](const test::RegistryServer& r) {
           Run({"skopeo", "copy", "-q", "--dest-tls-verify=false", "oci:" + layout_dir + ":big",
                "docker://" + r.host() + "/bench/big:latest"},
               env);
         }});
  }
  const double manifold_push = push[0].seconds;
  const double skopeo_push = push[1].seconds;

  // 2. Two single-platform images in one repository, merged into an index by each tool.
  test::TestImage amd64 = test::MakeTestImage({"linux", "amd64", ""}, "amd64\n");
  test::TestImage arm64 = test::MakeTestImage({"linux", "arm64", ""}, "arm64\n");
  auto two_images = [&](const test::RegistryServer& r) {
    RegistryClient client(r.host(), Hermetic(dir));
    Check(test::PushTestImage(client, "bench/app", "amd64", amd64), "push amd64 image");
    Check(test::PushTestImage(client, "bench/app", "arm64", arm64), "push arm64 image");
  };
  const std::string manifold_bin = std::string(MANIFOLD_BINARY_DIR) + "/cli/manifold";
  int list_number = 0;
  const std::vector<Figure> merge = MedianSeconds(
      runs, two_images,
      {[&](const test::RegistryServer& r) {
         const std::string repo = r.host() + "/bench/app";
         Run({manifold_bin, "imagetools", "create", "-t", repo + ":multi", repo + ":amd64",
              repo + ":arm64"},
             env);
       },
       [&](const test::RegistryServer& r) {
         const std::string repo = r.host() + "/bench/app";
         Run({"docker", "manifest", "create", "--insecure", "--amend", repo + ":multi",
              repo + ":amd64", repo + ":arm64"},
             env);
         Run({"docker", "manifest", "push", "--insecure", "--purge", repo + ":multi"}, env);
       },
       [&](const test::RegistryServer& r) {
         const std::string repo = r.host() + "/bench/app";
         const std::string list = "manifold-bench-list-" + std::to_string(++list_number) + "-" +
                                  std::to_string(getpid());
         Run({"buildah", "manifest", "create", list});
         Run({"buildah", "manifest", "add", "--tls-verify=false", list,
              "docker://" + repo + ":amd64"});
         Run({"buildah", "manifest", "add", "--tls-verify=false", list,
              "docker://" + repo + ":arm64"});
         Run({"buildah", "manifest", "push", "-q", "--tls-verify=false", "--all", list,
              "docker://" + repo + ":multi"});
         test::RunCommand({"buildah", "manifest", "rm", list}, kCommandTimeout);
       }});
  const double manifold_merge = merge[0].seconds;
  const double docker_merge = merge[1].seconds;
  const double buildah_merge = merge[2].seconds;

  // What starting each program costs before it sends a request.
  const std::vector<Figure> start = MedianSeconds(std::max(runs, 5), none,
                                                  {[&](const test::RegistryServer&) {
                                                     Run({manifold_bin, "--help"}, env);
                                                   },
                                                   [&](const test::RegistryServer&) {
                                                     Run({"docker", "manifest", "--help"}, env);
                                                   }});
  const double manifold_start = start[0].seconds;
  const double docker_start = start[1].seconds;

  std::printf("runs per figure: %d (median)\n", runs);
  if (!merge_only) {
    std::printf("push OCI layout, %d MiB layer:\n", layer_mib);
    std::printf("  manifold PushLayout     %8.3f s\n", manifold_push);
    std::printf("  skopeo copy             %8.3f s\n", skopeo_push);
    std::printf("  skopeo / manifold       %8.2fx\n", skopeo_push / manifold_push);
  }
  // Milliseconds for the merge and the starts: they are tens of them.
  auto ms = [](double seconds) { return seconds * 1000; };
  std::printf("create + push a two-platform index:\n");
  std::printf("  manifold imagetools     %8.1f ms  (CPU %.1f ms)\n", ms(manifold_merge),
              ms(merge[0].cpu_seconds));
  std::printf("  docker manifest         %8.1f ms  (CPU %.1f ms)\n", ms(docker_merge),
              ms(merge[1].cpu_seconds));
  std::printf("  buildah manifest        %8.1f ms  (CPU %.1f ms)\n", ms(buildah_merge),
              ms(merge[2].cpu_seconds));
  std::printf("  docker / manifold       %8.2fx  (CPU %.2fx)\n", docker_merge / manifold_merge,
              merge[1].cpu_seconds / merge[0].cpu_seconds);
  std::printf("  buildah / manifold      %8.2fx  (CPU %.2fx)\n", buildah_merge / manifold_merge,
              merge[2].cpu_seconds / merge[0].cpu_seconds);
  std::printf("process start alone:\n");
  std::printf("  manifold --help         %8.1f ms  (CPU %.1f ms)\n", ms(manifold_start),
              ms(start[0].cpu_seconds));
  std::printf("  docker manifest --help  %8.1f ms  (CPU %.1f ms)\n", ms(docker_start),
              ms(start[1].cpu_seconds));
  return 0;
}
