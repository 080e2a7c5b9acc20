// manifold-agent: serves one build host's platforms to a coordinator until SIGINT or
// SIGTERM, then drains and says goodbye.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <filesystem>
#include <memory>
#include <thread>

#include "agent/agent.h"
#include "agent/buildah_builder.h"
#include "agent/command_runner.h"
#include "agent/host_platforms.h"
#include "agent/metrics.h"
#include "agent/synthetic_builder.h"
#include "common/platform.h"

namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop = true; }

int Fail(const std::string& message) {
  spdlog::critical("{}", message);
  return 1;
}

std::string Hostname() {
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return name;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace manifold;
  CLI::App app{"manifold-agent: builds container images for a manifold coordinator"};
  std::string coordinator = "tcp://127.0.0.1:7081";
  std::string agent_id = Hostname();
  std::string platforms_text;
  uint32_t slots = 1;
  std::string work_dir = "/var/lib/manifold-agent";
  std::vector<std::string> labels;
  std::string buildah = "buildah";
  int drain_grace_s = 600;
  std::string log_level = "info";
  std::string metrics_listen = "127.0.0.1:7083";
  std::string backend = "buildah";
  SyntheticBuildOptions synthetic;
  int64_t synthetic_build_ms = 0;
  bool synthetic_uncompressed = false;
  app.add_option("--coordinator", coordinator, "coordinator's agent endpoint")
      ->envname("MANIFOLD_COORDINATOR")
      ->capture_default_str();
  app.add_option("--id", agent_id, "agent id (default: the hostname)")
      ->envname("MANIFOLD_AGENT_ID");
  app.add_option("--platform", platforms_text,
                 "platforms to serve, comma-separated (default: the host's own); a "
                 "non-native one runs under QEMU")
      ->envname("MANIFOLD_PLATFORMS");
  app.add_option("--slots", slots, "jobs run at once")
      ->envname("MANIFOLD_SLOTS")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--work-dir", work_dir, "scratch space for jobs")
      ->envname("MANIFOLD_WORK_DIR")
      ->capture_default_str();
  app.add_option("--label", labels, "KEY=VALUE label, repeatable");
  app.add_option("--buildah", buildah, "buildah binary")
      ->envname("MANIFOLD_BUILDAH")
      ->capture_default_str();
  app.add_option("--backend", backend,
                 "builder: buildah, or synthetic (a benchmark tool: no real build, a random "
                 "image of the job's platform after --synthetic-build-ms)")
      ->envname("MANIFOLD_AGENT_BACKEND")
      ->check(CLI::IsMember({"buildah", "synthetic"}))
      ->capture_default_str();
  app.add_option("--synthetic-layer-bytes", synthetic.layer_bytes,
                 "synthetic backend: random bytes in the image's one layer")
      ->envname("MANIFOLD_SYNTHETIC_LAYER_BYTES")
      ->capture_default_str();
  app.add_option("--synthetic-build-ms", synthetic_build_ms,
                 "synthetic backend: how long each build takes (0: none)")
      ->envname("MANIFOLD_SYNTHETIC_BUILD_MS")
      ->capture_default_str();
  app.add_flag("--synthetic-uncompressed", synthetic_uncompressed,
               "synthetic backend: an uncompressed tar layer instead of tar+gzip")
      ->envname("MANIFOLD_SYNTHETIC_UNCOMPRESSED");
  app.add_option("--drain-grace", drain_grace_s, "seconds running jobs get to finish on stop")
      ->envname("MANIFOLD_DRAIN_GRACE")
      ->capture_default_str();
  app.add_option("--metrics-listen", metrics_listen,
                 "HOST:PORT serving this agent's /metrics (Prometheus)")
      ->envname("MANIFOLD_AGENT_METRICS_LISTEN")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->envname("MANIFOLD_LOG_LEVEL")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::from_str(log_level));

  Result<Platform> host = HostPlatform();
  if (!host.ok()) return Fail(host.status().message());
  std::vector<Platform> requested;
  if (!platforms_text.empty()) {
    Result<std::vector<Platform>> parsed = ParsePlatformList(platforms_text);
    if (!parsed.ok()) return Fail("--platform: " + parsed.status().message());
    requested = *parsed;
  }
  Result<std::vector<PlatformOffer>> offers = ResolvePlatformOffers(requested, *host);
  if (!offers.ok()) return Fail(offers.status().message());

  AgentOptions options;
  options.coordinator = coordinator;
  options.agent_id = agent_id;
  options.hostname = Hostname();
  options.version = "0.1.0";
  options.platforms = *offers;
  options.slots = slots;
  options.work_dir = work_dir;
  options.drain_grace = std::chrono::seconds(drain_grace_s);
  for (const std::string& label : labels) {
    auto eq = label.find('=');
    if (eq == std::string::npos || eq == 0) return Fail("--label must be KEY=VALUE, got " + label);
    options.labels[label.substr(0, eq)] = label.substr(eq + 1);
  }
  std::error_code ec;
  std::filesystem::create_directories(work_dir, ec);
  if (ec) return Fail("cannot create --work-dir " + work_dir + ": " + ec.message());

  SubprocessRunner runner;
  std::unique_ptr<Builder> builder;
  if (backend == "synthetic") {
    synthetic.build_time = std::chrono::milliseconds(synthetic_build_ms);
    synthetic.gzip = !synthetic_uncompressed;
    if (Status ok = SyntheticBuilder::Validate(synthetic); !ok.ok()) return Fail(ok.message());
    spdlog::warn("synthetic backend: images are random benchmark data, not builds");
    builder = std::make_unique<SyntheticBuilder>(synthetic);
  } else {
    if (Status ok = BuildahBuilder::CheckAvailable(runner, buildah); !ok.ok()) {
      return Fail(ok.message());
    }
    builder = std::make_unique<BuildahBuilder>(runner, buildah);
  }

  // Bound before the agent says hello, so an agent Prometheus cannot see never takes jobs.
  AgentMetrics metrics(options.platforms, options.slots, options.version);
  int metrics_port = metrics.Serve(metrics_listen);
  if (metrics_port < 0) {
    return Fail("cannot serve metrics on " + metrics_listen +
                " (is the port in use? set --metrics-listen or MANIFOLD_AGENT_METRICS_LISTEN)");
  }
  options.metrics = &metrics;

  struct sigaction action = {};
  action.sa_handler = OnSignal;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  for (const PlatformOffer& offer : options.platforms) {
    spdlog::info("serving {}{}", offer.platform.ToString(),
                 offer.emulated ? " (emulated through QEMU)" : " (native)");
  }
  spdlog::info("metrics on {}:{}", metrics_listen.substr(0, metrics_listen.rfind(':')),
               metrics_port);
  Agent agent(options, *builder);
  Status status = agent.Run(g_stop);
  if (!status.ok()) return Fail(status.message());
  return 0;
}
