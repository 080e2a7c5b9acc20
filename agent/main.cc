// manifold-agent: serves one build host's platforms to a coordinator until SIGINT or
// SIGTERM, then drains and says goodbye.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <thread>

#include "agent/agent.h"
#include "agent/backend_check.h"
#include "agent/cache_mounts.h"
#include "agent/cache_mounts_artifact.h"
#include "agent/command_runner.h"
#include "agent/host_platforms.h"
#include "agent/job_cgroup.h"
#include "agent/job_disk.h"
#include "agent/job_policy.h"
#include "agent/metrics.h"
#include "agent/prune_plan.h"
#include "agent/sandbox_network.h"
#include "common/ca_bundle.h"
#include "common/config_file.h"
#include "common/curve_keys.h"
#include "common/log.h"
#include "common/platform.h"
#include "common/version.h"

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
  BackendOptions backend;
  if (const char* docker_host = std::getenv("DOCKER_HOST"); docker_host && *docker_host) {
    backend.docker.host = docker_host;
  }
  int drain_grace_s = 600;
  std::string log_level = "info";
  std::string log_format = "text";
  std::string metrics_listen = "127.0.0.1:7083";
  std::string curve_secret_key_file;
  std::string coordinator_public_key_file;
  std::string api_ca_file;
  int64_t synthetic_build_ms = 0;
  bool synthetic_uncompressed = false;
  app.add_option("--coordinator", coordinator,
                 "the coordinator's agent endpoint; with several coordinators on one database, "
                 "all their endpoints, comma-separated (the agent finds the leader)")
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
  app.add_option("--label", labels, "KEY=VALUE label, repeatable")
      ->envname("MANIFOLD_AGENT_LABELS")
      ->delimiter(',');
  std::vector<std::string> insecure_registries;
  app.add_option("--insecure-registry", insecure_registries,
                 "push to this registry HOST[:PORT] over plain HTTP, unencrypted (repeatable)")
      ->envname("MANIFOLD_INSECURE_REGISTRIES")
      ->delimiter(',');
  app.add_option("--backend", backend.name,
                 "what builds: buildah, docker (a Docker engine), or synthetic (a benchmark "
                 "tool: a random image of the job's platform after --synthetic-build-ms)")
      ->envname("MANIFOLD_BACKEND")
      ->check(CLI::IsMember({"buildah", "docker", "synthetic"}))
      ->capture_default_str();
  app.add_option("--buildah", backend.buildah, "buildah binary")
      ->envname("MANIFOLD_BUILDAH")
      ->capture_default_str();
  app.add_option("--docker", backend.docker.docker,
                 "docker client that can build with BuildKit (a name is looked up in PATH, "
                 "each match tried in turn)")
      ->envname("MANIFOLD_DOCKER")
      ->capture_default_str();
  app.add_option("--docker-host", backend.docker.host,
                 "the Docker engine for --backend docker (default: DOCKER_HOST or the "
                 "engine's usual socket)")
      ->envname("MANIFOLD_DOCKER_HOST")
      ->capture_default_str();
  app.add_option("--docker-network", backend.docker.network,
                 "network of RUN steps on the Docker engine for builds without --network: "
                 "none, or host (the engine's own network: the host's loopback, unsafe for "
                 "untrusted builds); default: the engine's bridge. A build's --network none "
                 "(or its entitled host) wins")
      ->envname("MANIFOLD_DOCKER_NETWORK")
      ->check(CLI::IsMember({"host", "none"}));
  app.add_option("--skopeo", backend.docker.skopeo,
                 "skopeo binary (the docker backend exports images with it)")
      ->envname("MANIFOLD_SKOPEO")
      ->capture_default_str();
  app.add_option("--synthetic-layer-bytes", backend.synthetic.layer_bytes,
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
  SandboxNetworkOptions sandbox_network;
  app.add_option("--isolation", backend.buildah_sandbox.isolation,
                 "how buildah runs RUN steps: oci (runc; each step in its own namespaces on "
                 "a private network) or chroot (the host's processes and network: unsafe for "
                 "untrusted Dockerfiles)")
      ->envname("MANIFOLD_ISOLATION")
      ->check(CLI::IsMember({"oci", "chroot"}))
      ->capture_default_str();
  app.add_option("--deny-network", sandbox_network.deny_networks,
                 "an IPv4 CIDR RUN steps may not reach (repeatable); the host's own "
                 "addresses and 169.254.0.0/16 are always denied")
      ->envname("MANIFOLD_DENY_NETWORK")
      ->delimiter(',');
  app.add_option("--sandbox-range", sandbox_network.range,
                 "an IPv4 /16 for the RUN steps' private networks; each agent on the host "
                 "takes one /24 of it")
      ->envname("MANIFOLD_SANDBOX_RANGE")
      ->capture_default_str();
  app.add_option("--sandbox-state-dir", sandbox_network.state_dir,
                 "where agents on this host keep their sandbox networks' state (a tmpfs)")
      ->envname("MANIFOLD_SANDBOX_STATE_DIR")
      ->capture_default_str();
  app.add_option("--userns", backend.buildah_sandbox.userns,
                 "HOSTID:LENGTH: map RUN steps' root to the host's HOSTID (user namespace); "
                 "needs a storage driver other than vfs (see agent/buildah_builder.h)")
      ->envname("MANIFOLD_USERNS");
  app.add_option("--drain-grace", drain_grace_s, "seconds running jobs get to finish on stop")
      ->envname("MANIFOLD_DRAIN_GRACE")
      ->capture_default_str();
  app.add_option("--metrics-listen", metrics_listen,
                 "HOST:PORT serving this agent's /metrics (Prometheus)")
      ->envname("MANIFOLD_AGENT_METRICS_LISTEN")
      ->capture_default_str();
  app.add_option("--curve-secret-key", curve_secret_key_file,
                 "this agent's CURVE secret key file (`manifold keygen`); encrypts the link")
      ->envname("MANIFOLD_CURVE_SECRET_KEY");
  app.add_option("--coordinator-public-key", coordinator_public_key_file,
                 "the coordinator's CURVE public key file (its .pub)")
      ->envname("MANIFOLD_COORDINATOR_PUBLIC_KEY");
  app.add_option("--ca-file", api_ca_file,
                 "PEM CA certificate(s) trusted, besides the system's, for the coordinator's "
                 "HTTPS API (where build contexts are fetched) when a private CA signed it")
      ->envname("MANIFOLD_CA_FILE");
  // Per-job limits: sizes and CPUs as text ("4g", "1.5"), "0" for unlimited.
  struct LimitFlag {
    JobLimit limit;
    std::string value;  // the default's text; "" keeps DefaultJobPolicy()'s
    std::string max;
  };
  std::vector<LimitFlag> limit_flags = {{JobLimit::kMemory, "", ""},
                                        {JobLimit::kCpus, "", ""},
                                        {JobLimit::kPids, "", ""},
                                        {JobLimit::kDisk, "", ""}};
  const std::map<JobLimit, std::string> limit_help = {
      {JobLimit::kMemory, "memory of all of a job's RUN steps together, e.g. 4g"},
      {JobLimit::kCpus, "CPUs of a job's RUN steps, e.g. 2 or 0.5"},
      {JobLimit::kPids, "processes and threads of a job's RUN steps at once"},
      {JobLimit::kDisk,
       "size of a job's work dir (context, Dockerfile, the built image's layout), a "
       "loop-mounted file system of its own, e.g. 10g; not the layers RUN steps write"},
  };
  for (LimitFlag& flag : limit_flags) {
    const std::string name(JobLimitName(flag.limit));
    std::string upper = name;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    app.add_option("--job-" + name, flag.value,
                   "job default: " + limit_help.at(flag.limit) + "; 0: unlimited (default: " +
                       std::to_string(LimitValue(DefaultJobPolicy().defaults, flag.limit)) +
                       " with buildah" + "); a build may ask for another value up to --max-job-" +
                       name)
        ->envname("MANIFOLD_JOB_" + upper);
    app.add_option("--max-job-" + name, flag.max,
                   "most a build may ask for with `manifold build --job-" + name +
                       "` (default: no maximum)")
        ->envname("MANIFOLD_MAX_JOB_" + upper);
  }
  std::string cache_max_bytes = "20g";
  std::string min_free_disk = "2g";
  app.add_option("--cache-max-bytes", cache_max_bytes,
                 "buildah: most the container storage (layers, base and cache images) may "
                 "hold; past it, least recently used images are pruned after each job; 0: no "
                 "cap")
      ->envname("MANIFOLD_CACHE_MAX_BYTES")
      ->capture_default_str();
  app.add_option("--min-free-disk", min_free_disk,
                 "buildah: free space kept on the container storage's file system, a size or "
                 "a share such as 10%; below it the agent prunes, refuses jobs and stops a "
                 "build step that crosses it; 0: no floor")
      ->envname("MANIFOLD_MIN_FREE_DISK")
      ->capture_default_str();
  std::string cache_mounts_max_bytes = "256m";
  app.add_option("--cache-mounts-max-bytes", cache_mounts_max_bytes,
                 "buildah: most the RUN --mount=type=cache contents of one repository and "
                 "platform may take as an artifact in the registry cache; larger ones are not "
                 "pushed on drain, nor pulled; at most 256m (the artifact is held in memory)")
      ->envname("MANIFOLD_CACHE_MOUNTS_MAX_BYTES")
      ->capture_default_str();
  bool warm_start = true;
  app.add_option("--warm-start", warm_start,
                 "buildah: when the agent starts, load the registry caches of its platforms "
                 "the coordinator names (the most recently pushed) before a build needs them")
      ->envname("MANIFOLD_WARM_START")
      ->capture_default_str();
  std::vector<std::string> allowed_entitlements;
  app.add_option("--allow-insecure-entitlement", allowed_entitlements,
                 "let builds that ask for it (`manifold build --allow network.host`) use "
                 "network.host: RUN steps on the host's network, reaching its loopback "
                 "services (repeatable; only for builds you trust)")
      ->envname("MANIFOLD_ALLOW_INSECURE_ENTITLEMENTS")
      ->delimiter(',');
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->envname("MANIFOLD_LOG_LEVEL")
      ->capture_default_str();
  app.add_option("--log-format", log_format, "stderr lines: text, or json (one object a line)")
      ->envname("MANIFOLD_LOG_FORMAT")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  if (std::optional<int> exit_code = ParseWithConfigFile(app, argc, argv)) return *exit_code;
  spdlog::set_level(spdlog::level::from_str(log_level));
  SetUpLogging(*ParseLogFormat(log_format), {{"agent", agent_id}});

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
  options.version = kManifoldVersion;
  options.platforms = *offers;
  options.slots = slots;
  options.work_dir = work_dir;
  options.insecure_registries = insecure_registries;
  if (!api_ca_file.empty()) {
    Result<std::string> pem = ReadCaBundle(api_ca_file, "--ca-file");
    if (!pem.ok()) return Fail(pem.status().message());
    options.api_ca_pem = *pem;
    options.api_ca_file = api_ca_file;
  }
  options.drain_grace = std::chrono::seconds(drain_grace_s);
  options.warm_start = warm_start;
  for (const std::string& label : labels) {
    auto eq = label.find('=');
    if (eq == std::string::npos || eq == 0) return Fail("--label must be KEY=VALUE, got " + label);
    options.labels[label.substr(0, eq)] = label.substr(eq + 1);
  }
  if (curve_secret_key_file.empty() != coordinator_public_key_file.empty()) {
    return Fail(
        "--curve-secret-key and --coordinator-public-key go together: give both for an "
        "encrypted link, or neither for plaintext on one host");
  }
  if (!curve_secret_key_file.empty()) {
    Result<std::string> secret = ReadCurveSecretKey(curve_secret_key_file);
    if (!secret.ok()) return Fail("--curve-secret-key: " + secret.status().message());
    Result<std::string> coordinator_key =
        ReadCoordinatorPublicKey(coordinator_public_key_file, *secret);
    if (!coordinator_key.ok()) {
      return Fail("--coordinator-public-key: " + coordinator_key.status().message());
    }
    options.curve_secret_key = *secret;
    options.coordinator_public_key = *coordinator_key;
  }
  std::error_code ec;
  std::filesystem::create_directories(work_dir, ec);
  if (ec) return Fail("cannot create --work-dir " + work_dir + ": " + ec.message());

  // Only buildah enforces limits; the default process limit on a docker agent would make
  // it refuse every job (the engine takes no per-build limits).
  options.job_policy = backend.name == "buildah" ? DefaultJobPolicy() : JobPolicy{};
  options.job_policy.allowed_entitlements = allowed_entitlements;
  for (const LimitFlag& flag : limit_flags) {
    const std::string name(JobLimitName(flag.limit));
    auto parse = [&](const std::string& text, JobLimits* into, const std::string& option) {
      if (text.empty()) return Status::Ok();
      Result<uint64_t> value = ParseLimit(flag.limit, text);
      if (!value.ok()) return value.status().WithContext(option);
      SetLimitValue(into, flag.limit, *value);
      return Status::Ok();
    };
    if (Status s = parse(flag.value, &options.job_policy.defaults, "--job-" + name); !s.ok()) {
      return Fail(s.message());
    }
    if (Status s = parse(flag.max, &options.job_policy.maximums, "--max-job-" + name); !s.ok()) {
      return Fail(s.message());
    }
  }
  if (Status s = CheckJobPolicy(options.job_policy); !s.ok()) return Fail(s.message());
  Result<uint64_t> cache_max = ParseByteSize(cache_max_bytes);
  if (!cache_max.ok()) return Fail("--cache-max-bytes: " + cache_max.status().message());
  Result<DiskFloor> floor = ParseDiskFloor(min_free_disk);
  if (!floor.ok()) return Fail("--min-free-disk: " + floor.status().message());
  backend.buildah_store.max_bytes = *cache_max;
  backend.buildah_store.min_free = *floor;
  backend.buildah_store.state_file = work_dir + "/image-use";
  Result<uint64_t> cache_mounts_max = ParseByteSize(cache_mounts_max_bytes);
  if (!cache_mounts_max.ok()) {
    return Fail("--cache-mounts-max-bytes: " + cache_mounts_max.status().message());
  }
  if (*cache_mounts_max > kMaxCacheMountsArtifactBytes) {
    return Fail(
        "--cache-mounts-max-bytes is at most 256m: the artifact is packed and "
        "unpacked in memory; give a smaller value");
  }
  // Made before the agent says hello, so an agent Prometheus cannot see never takes jobs.
  AgentMetrics metrics(options.platforms, options.slots, options.version);
  std::unique_ptr<CacheMounts> cache_mounts;
  if (backend.name == "buildah") {
    CacheMountsOptions mounts;
    mounts.dir = work_dir + "/cache-mounts";
    mounts.max_artifact_bytes = *cache_mounts_max;
    mounts.registry_options.insecure_registries = insecure_registries;
    mounts.metrics = &metrics;
    cache_mounts = std::make_unique<CacheMounts>(std::move(mounts));
    backend.buildah_store.cache_mounts = cache_mounts.get();
    options.cache_mounts = cache_mounts.get();
  }
  // A killed agent's job file systems and cgroups go before any job of this one starts.
  SweepJobDisks(work_dir + "/jobs");
  std::unique_ptr<JobCgroups> job_cgroups;
  if (backend.name == "buildah") {
    Result<std::unique_ptr<JobCgroups>> opened = JobCgroups::Open(work_dir);
    const JobLimits& defaults = options.job_policy.defaults;
    if (opened.ok()) {
      job_cgroups = std::move(*opened);
      options.job_cgroups = job_cgroups.get();
    } else if (defaults.memory_bytes != 0 || defaults.cpu_millis != 0 || defaults.pids != 0) {
      return Fail(opened.status().message());
    } else {
      spdlog::warn("jobs run without memory, CPU and process limits: {}",
                   opened.status().message());
    }
  }

  SubprocessRunner runner;
  // Lives until main returns: its destructor removes the network's rules.
  std::unique_ptr<SandboxNetwork> network;
  if (backend.name == "buildah" && backend.buildah_sandbox.isolation == "oci") {
    Result<std::unique_ptr<SandboxNetwork>> opened = SandboxNetwork::Open(sandbox_network, runner);
    if (!opened.ok()) return Fail(opened.status().message());
    network = std::move(*opened);
    backend.buildah_sandbox.cni_config_dir = network->cni_config_dir();
    backend.buildah_sandbox.network = network->name();
  }
  backend.synthetic.build_time = std::chrono::milliseconds(synthetic_build_ms);
  backend.synthetic.gzip = !synthetic_uncompressed;
  backend.buildah_layers = options.platforms.size() == 1;
  Result<OpenedBackend> backend_ready = OpenBackend(backend, runner);
  if (!backend_ready.ok()) return Fail(backend_ready.status().message());
  spdlog::info("building with {}", backend_ready->description);
  // Said once the backend works: an agent that cannot build fails with one line.
  if (network != nullptr) {
    spdlog::info("RUN steps run in their own namespaces on network {} ({}, bridge {})",
                 network->name(), network->subnet(), network->bridge());
  } else if (backend.name == "buildah") {
    spdlog::warn(
        "RUN steps run with --isolation chroot, in the host's processes and network: "
        "only for trusted Dockerfiles");
  }
  for (const std::string& warning : backend_ready->warnings) spdlog::warn("{}", warning);
  Builder& builder = *backend_ready->builder;

  int metrics_port = metrics.Serve(metrics_listen);
  if (metrics_port < 0) {
    return Fail("cannot serve metrics on " + metrics_listen +
                " (is the port in use? set --metrics-listen or MANIFOLD_AGENT_METRICS_LISTEN)");
  }
  options.metrics = &metrics;
  if (backend_ready->image_store != nullptr) {
    backend_ready->image_store->Start(&metrics);
    options.image_store = backend_ready->image_store.get();
    spdlog::info(
        "container storage {}: cap {} (--cache-max-bytes), free-space floor {} "
        "(--min-free-disk)",
        backend_ready->image_store->graph_root(),
        *cache_max == 0 ? std::string("none") : FormatBytes(*cache_max),
        floor->bytes == 0 && floor->percent == 0 ? std::string("none") : DescribeFloor(*floor));
  }

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
  Agent agent(options, builder);
  Status status = agent.Run(g_stop);
  if (!status.ok()) return Fail(status.message());
  return 0;
}
