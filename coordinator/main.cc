// manifold-coordinator: wires the store, the agent loop and the HTTP API together and
// runs until SIGINT or SIGTERM.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <thread>

#include "common/config_file.h"
#include "common/curve_keys.h"
#include "common/log.h"
#include "coordinator/api.h"
#include "coordinator/api_auth.h"
#include "coordinator/api_queue.h"
#include "coordinator/cache_plan.h"
#include "coordinator/context_collector.h"
#include "coordinator/coordinator.h"
#include "coordinator/database_wait.h"
#include "coordinator/disk_context_store.h"
#include "coordinator/leadership.h"
#include "coordinator/listen_address.h"
#include "coordinator/pid_file.h"
#include "coordinator/retention.h"
#include "coordinator/store.h"
#include "coordinator/token_command.h"
#include "coordinator/work_listener.h"

namespace {

int Fail(const std::string& message) {
  spdlog::critical("{}", message);
  return 1;
}

std::string Hostname() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "coordinator";
  return name;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace manifold;
  CLI::App app{"manifold-coordinator: queues multi-platform builds and dispatches them to agents"};
  std::string database_url = "postgresql://postgres@127.0.0.1:5432/manifold";
  std::string api_listen = "127.0.0.1:7080";
  std::string agent_listen = "tcp://127.0.0.1:7081";
  std::string public_url;
  std::string state_dir = "/var/lib/manifold";
  int heartbeat_ms = 2000;
  int missed_heartbeats = 3;
  uint32_t max_retries = 10;
  int merge_workers = 4;
  int database_wait_s = 60;
  int leader_lease_ms = 5000;
  std::string leader_name;
  int commit_read_back_ms = 5000;
  int queue_timeout_s = 900;
  int emulation_fallback_s = 60;
  int cache_affinity_s = 6 * 3600;
  std::string cache_ttl_text = "7d";
  ContextRetention context_retention;
  std::string context_max_age_text = "7d";
  std::string retention_text = "30d";
  std::string log_retention_text;
  std::string log_level = "info";
  std::string log_format = "text";
  std::string metrics_listen = "127.0.0.1:7082";
  double target_utilisation = 1.0;
  CoordinatorOptions options;
  ApiOptions api_options;
  std::string curve_secret_key_file;
  std::string agent_keys_file;
  std::string api_auth = "auto";
  bool api_open_probes = true;
  std::string tls_cert_file;
  std::string tls_key_file;
  app.add_option("--database-url", database_url, "PostgreSQL URL")
      ->envname("MANIFOLD_DATABASE_URL")
      ->capture_default_str();
  app.add_option("--api-listen", api_listen, "HOST:PORT of the HTTP API")
      ->envname("MANIFOLD_API_LISTEN")
      ->capture_default_str();
  app.add_option("--agent-listen", agent_listen, "ZeroMQ endpoint agents connect to")
      ->envname("MANIFOLD_AGENT_LISTEN")
      ->capture_default_str();
  app.add_option("--public-url", public_url,
                 "URL agents use to reach the API (default http://<api-listen>)")
      ->envname("MANIFOLD_PUBLIC_URL");
  app.add_option("--state-dir", state_dir, "directory for build contexts")
      ->envname("MANIFOLD_STATE_DIR")
      ->capture_default_str();
  app.add_option("--heartbeat-interval-ms", heartbeat_ms, "agent heartbeat interval")
      ->envname("MANIFOLD_HEARTBEAT_INTERVAL_MS")
      ->check(CLI::Range(100, 600000))
      ->capture_default_str();
  app.add_option("--missed-heartbeats", missed_heartbeats,
                 "heartbeats missed before an agent is lost")
      ->envname("MANIFOLD_MISSED_HEARTBEATS")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--max-retries", max_retries,
                 "times a job is retried after faults outside its build (agent lost, drained "
                 "or restarted; registry or network errors); a failed build step is not retried")
      ->envname("MANIFOLD_MAX_RETRIES")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  app.add_option("--merge-workers", merge_workers,
                 "builds whose index is merged and pushed at once (each waits on the registry)")
      ->envname("MANIFOLD_MERGE_WORKERS")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--queue-timeout", queue_timeout_s,
                 "seconds a job may wait while no agent serves its platform")
      ->envname("MANIFOLD_QUEUE_TIMEOUT")
      ->check(CLI::Range(1, 86400 * 7))
      ->capture_default_str();
  app.add_option("--emulation-fallback-wait", emulation_fallback_s,
                 "seconds a job of an --emulation fallback build waits for a native agent "
                 "before an emulated one may take it")
      ->envname("MANIFOLD_EMULATION_FALLBACK_WAIT")
      ->check(CLI::Range(0, 86400))
      ->capture_default_str();
  app.add_option("--cache-affinity-window", cache_affinity_s,
                 "seconds an agent's layer cache counts as warm for a repository it built")
      ->envname("MANIFOLD_CACHE_AFFINITY_WINDOW")
      ->check(CLI::Range(0, 86400 * 30))
      ->capture_default_str();
  app.add_option("--cache-repo-template", options.loop.cache.repo_template,
                 "registry cache of builds that name none (no --cache-from/--cache-to): "
                 "read from and written to this ref, {repo} being the image's repository "
                 "path, e.g. 'registry.example/cache/{repo}'; each platform gets its own "
                 "repository under it")
      ->envname("MANIFOLD_CACHE_REPO_TEMPLATE");
  app.add_option("--cache-ttl", cache_ttl_text,
                 "registry cache pushed longer ago is not used: 7d, 12h... (0: no limit)")
      ->envname("MANIFOLD_CACHE_TTL")
      ->capture_default_str();
  app.add_option("--warm-start-caches", options.loop.warm_start_caches,
                 "registry caches a newly started agent loads before its first build: the "
                 "ones of its platforms pushed most recently within --cache-ttl (0: none)")
      ->envname("MANIFOLD_WARM_START_CACHES")
      ->check(CLI::Range(size_t{0}, size_t{1000}))
      ->capture_default_str();
  app.add_option("--retention", retention_text,
                 "how long a finished build (its jobs, events and log) and an agent gone "
                 "are kept: 30d, 12h, 60s... (0: forever)")
      ->envname("MANIFOLD_RETENTION")
      ->capture_default_str();
  app.add_option("--context-max-age", context_max_age_text,
                 "how long a build context is kept after its last use (upload, submit, "
                 "download): 7d, 12h, 60s...; one that a queued or running build needs is "
                 "kept (0: no limit)")
      ->envname("MANIFOLD_CONTEXT_MAX_AGE")
      ->capture_default_str();
  app.add_option("--context-max-bytes", context_retention.max_bytes,
                 "bytes of build contexts kept in --state-dir; past it the least recently used "
                 "go first, except those queued or running builds need and those used in the "
                 "last 10 minutes (0: no limit)")
      ->envname("MANIFOLD_CONTEXT_MAX_BYTES")
      ->capture_default_str();
  app.add_option("--log-retention", log_retention_text,
                 "the former name of --retention (a bare number is seconds); give one of them")
      ->envname("MANIFOLD_LOG_RETENTION");
  app.add_option("--database-wait", database_wait_s, "seconds to wait for the database at start")
      ->envname("MANIFOLD_DATABASE_WAIT")
      ->capture_default_str();
  app.add_option("--leader-lease-ms", leader_lease_ms,
                 "coordinators on one database: the one holding this lease runs the agent "
                 "loop, renewing it every third of it; the others wait as standbys and take "
                 "over once it expires")
      ->envname("MANIFOLD_LEADER_LEASE_MS")
      ->check(CLI::Range(300, 600000))
      ->capture_default_str();
  app.add_option("--leader-name", leader_name,
                 "this coordinator's name in the leader lease, unique among the coordinators "
                 "of one database (default: host name and --api-listen)")
      ->envname("MANIFOLD_LEADER_NAME");
  app.add_option("--commit-read-back-ms", commit_read_back_ms,
                 "milliseconds to ask a database whether a COMMIT whose answer was lost "
                 "committed, before the coordinator reads its state back once it answers")
      ->envname("MANIFOLD_COMMIT_READ_BACK_MS")
      ->check(CLI::Range(0, 600000))
      ->capture_default_str();
  app.add_option("--metrics-listen", metrics_listen, "HOST:PORT serving /metrics (Prometheus)")
      ->envname("MANIFOLD_METRICS_LISTEN")
      ->capture_default_str();
  app.add_option("--target-utilisation", target_utilisation,
                 "share of agent slots manifold_desired_agents aims to keep busy (0.1 to 1)")
      ->envname("MANIFOLD_TARGET_UTILISATION")
      ->check(CLI::Range(0.1, 1.0))
      ->capture_default_str();
  app.add_option("--max-frame-bytes", options.loop.limits.max_frame_bytes,
                 "largest message an agent may send (ZMQ_MAXMSGSIZE on the agent socket)")
      ->envname("MANIFOLD_MAX_FRAME_BYTES")
      ->check(CLI::Range(uint64_t{4096}, uint64_t{1} << 31))
      ->capture_default_str();
  app.add_option("--log-bytes-per-second", options.loop.log_limits.bytes_per_second,
                 "build output kept per job and second; more is dropped and counted")
      ->envname("MANIFOLD_LOG_BYTES_PER_SECOND")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--log-burst-bytes", options.loop.log_limits.burst_bytes,
                 "build output a job may send at once above --log-bytes-per-second")
      ->envname("MANIFOLD_LOG_BURST_BYTES")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--job-log-max-bytes", options.loop.log_limits.job_max_bytes,
                 "build output stored per job: its first and last half are kept and the "
                 "middle is cut, with a line saying how much (0: keep all)")
      ->envname("MANIFOLD_JOB_LOG_MAX_BYTES")
      ->check(CLI::Range(uint64_t{0}, uint64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--pending-log-max-bytes", options.loop.log_limits.pending_max_bytes,
                 "build output held in memory while the database is away or slow; past "
                 "half of it agents are told to hold their output")
      ->envname("MANIFOLD_PENDING_LOG_MAX_BYTES")
      ->check(CLI::Range(uint64_t{1} << 20, uint64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--max-context-bytes", api_options.max_context_bytes,
                 "largest build context the API accepts")
      ->envname("MANIFOLD_MAX_CONTEXT_BYTES")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--max-request-bytes", api_options.max_request_bytes,
                 "largest request body the API accepts, context uploads aside")
      ->envname("MANIFOLD_MAX_REQUEST_BYTES")
      ->check(CLI::Range(uint64_t{1024}, uint64_t{1} << 30))
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->envname("MANIFOLD_LOG_LEVEL")
      ->capture_default_str();
  app.add_option("--log-format", log_format, "stderr lines: text, or json (one object a line)")
      ->envname("MANIFOLD_LOG_FORMAT")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.add_option("--curve-secret-key", curve_secret_key_file,
                 "the coordinator's CURVE secret key file (`manifold keygen`); encrypts the "
                 "agent link")
      ->envname("MANIFOLD_CURVE_SECRET_KEY");
  std::vector<std::string> insecure_registries;
  app.add_option("--insecure-registry", insecure_registries,
                 "push indexes to this registry HOST[:PORT] over plain HTTP, unencrypted "
                 "(repeatable)")
      ->envname("MANIFOLD_INSECURE_REGISTRIES")
      ->delimiter(',');
  app.add_option("--agent-keys", agent_keys_file,
                 "file of agent CURVE public keys allowed to connect, one per line with an "
                 "optional name; reloaded on SIGHUP")
      ->envname("MANIFOLD_AGENT_KEYS");
  std::string pid_file;
  app.add_option("--pid-file", pid_file,
                 "write this process's id to FILE while it runs, for `kill -HUP \"$(cat FILE)\"` "
                 "(reloads --agent-keys) without systemd")
      ->envname("MANIFOLD_PID_FILE");
  app.add_option("--api-auth", api_auth,
                 "require API tokens: on, off (loopback only) or auto (on unless the API "
                 "listens on loopback)")
      ->envname("MANIFOLD_API_AUTH")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  app.add_option("--api-open-probes", api_open_probes,
                 "let /healthz and /readyz answer without a token")
      ->envname("MANIFOLD_API_OPEN_PROBES")
      ->capture_default_str();
  app.add_option("--tls-cert", tls_cert_file, "PEM certificate (chain) for HTTPS on the API")
      ->envname("MANIFOLD_TLS_CERT");
  app.add_option("--tls-key", tls_key_file, "PEM private key of --tls-cert")
      ->envname("MANIFOLD_TLS_KEY");
  TokenCommand token_command;
  CLI::App* token_cmd = app.add_subcommand("token", "manage API tokens (in the database)");
  token_cmd->require_subcommand(1);
  token_cmd->add_subcommand("create", "make a token and print it once")
      ->fallthrough()
      ->add_option("--name", token_command.name, "what the token is for, e.g. ci")
      ->required();
  token_cmd->add_subcommand("list", "list tokens (names and ids, never the tokens)")->fallthrough();
  token_cmd->add_subcommand("revoke", "revoke a token at once")
      ->fallthrough()
      ->add_option("NAME", token_command.name, "the token's name")
      ->required();
  token_cmd->fallthrough();
  if (std::optional<int> exit_code = ParseWithConfigFile(app, argc, argv)) return *exit_code;
  spdlog::set_level(spdlog::level::from_str(log_level));
  SetUpLogging(*ParseLogFormat(log_format));

  // Both given: refused rather than one silently winning, as they name the same setting.
  if (!log_retention_text.empty() && app.count("--retention") > 0) {
    return Fail(
        "--retention and --log-retention (MANIFOLD_RETENTION and MANIFOLD_LOG_RETENTION) are "
        "the same setting; give only --retention");
  }
  Result<std::chrono::seconds> retention =
      log_retention_text.empty() ? ParseRetention("--retention", retention_text)
                                 : ParseRetention("--log-retention", log_retention_text);
  if (!retention.ok()) return Fail(retention.status().message());
  api_options.retention = *retention;

  auto colon = api_listen.rfind(':');
  if (colon == std::string::npos) return Fail("--api-listen must be HOST:PORT, got " + api_listen);
  api_options.listen_host = api_listen.substr(0, colon);
  try {
    api_options.listen_port = std::stoi(api_listen.substr(colon + 1));
  } catch (const std::exception&) {
    return Fail("--api-listen must be HOST:PORT, got " + api_listen);
  }
  bool tls = !tls_cert_file.empty();
  if (public_url.empty()) public_url = (tls ? "https://" : "http://") + api_listen;
  bool api_on_loopback = IsLoopbackHost(api_options.listen_host);
  if (api_auth == "off" && !api_on_loopback) {
    return Fail("--api-auth off is allowed only when the API listens on loopback, not " +
                api_listen + "; create tokens with `manifold-coordinator token create`");
  }
  ApiAuthOptions auth_options;
  auth_options.required = api_auth == "on" || (api_auth == "auto" && !api_on_loopback);
  auth_options.open_probes = api_open_probes;
  api_options.tls_cert_file = tls_cert_file;
  api_options.tls_key_file = tls_key_file;
  std::string curve_secret_key;
  if (curve_secret_key_file.empty() != agent_keys_file.empty()) {
    return Fail(
        "--curve-secret-key and --agent-keys go together: give both for encrypted, "
        "authenticated agents, or neither for plaintext on loopback");
  }
  if (!curve_secret_key_file.empty()) {
    Result<std::string> secret = ReadCurveSecretKey(curve_secret_key_file);
    if (!secret.ok()) return Fail("--curve-secret-key: " + secret.status().message());
    curve_secret_key = *secret;
  }

  // Block the stop signals in every thread; main waits for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);  // reloads the agent key list
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // After the mask, so that a SIGHUP sent as soon as the file appears cannot end the process;
  // not for a token command, which would take the running coordinator's file.
  PidFile written_pid_file;
  if (!pid_file.empty() && !token_cmd->parsed()) {
    if (Status written = written_pid_file.Write(pid_file); !written.ok()) {
      return Fail(written.message());
    }
  }

  std::unique_ptr<Store> store;
  Status connected = WaitForDatabase(
      [&]() -> Status {
        // A connection for the loop, the API's threads, the context collector and each merge
        // thread, so none of them waits for another's to come back.
        Result<std::unique_ptr<Store>> opened = Store::Open(
            database_url, 9 + merge_workers, std::chrono::milliseconds(commit_read_back_ms));
        if (!opened.ok()) return opened.status();
        store = std::move(*opened);
        return Status::Ok();
      },
      std::chrono::seconds(database_wait_s));
  if (connected.code() == Status::Code::kCanceled) {
    // systemd stops a service with SIGTERM and counts exit 0 as a clean stop, as after
    // the wait; a token command that was stopped did not do its work.
    spdlog::warn("{}", connected.message());
    return token_cmd->parsed() ? 1 : 0;
  }
  if (!connected.ok()) {
    return Fail(connected.message() + " (check --database-url / MANIFOLD_DATABASE_URL)");
  }
  if (Status migrated = store->Migrate(); !migrated.ok()) return Fail(migrated.message());
  for (CLI::App* action : token_cmd->get_subcommands()) {
    token_command.action = action->get_name();
    return RunTokenCommand(*store, token_command, &std::cout, &std::cerr);
  }

  // A standby serves its metrics too, so manifold_leader says which coordinator leads.
  Metrics metrics(target_utilisation);
  int metrics_port = metrics.Serve(metrics_listen);
  if (metrics_port < 0) {
    return Fail("cannot serve metrics on " + metrics_listen +
                " (is the port in use? set --metrics-listen)");
  }

  Result<std::unique_ptr<DiskContextStore>> contexts = DiskContextStore::Create(state_dir);
  if (!contexts.ok()) return Fail(contexts.status().message());
  Result<std::chrono::seconds> context_max_age =
      ParseRetention("--context-max-age", context_max_age_text);
  if (!context_max_age.ok()) return Fail(context_max_age.status().message());
  context_retention.max_age = *context_max_age;
  Result<std::chrono::seconds> cache_ttl = ParseRetention("--cache-ttl", cache_ttl_text);
  if (!cache_ttl.ok()) return Fail(cache_ttl.status().message());
  options.loop.cache.ttl = *cache_ttl;
  if (!options.loop.cache.repo_template.empty()) {
    if (Status s = ValidateCacheRepoTemplate(options.loop.cache.repo_template); !s.ok()) {
      return Fail(s.message());
    }
  }

  options.agent_endpoint = agent_listen;
  options.loop.contexts.public_url = public_url;
  options.loop.heartbeat_interval = std::chrono::milliseconds(heartbeat_ms);
  options.loop.missed_heartbeats = missed_heartbeats;
  options.loop.max_retries = max_retries;
  options.merge_workers = merge_workers;
  options.loop.queue_timeout = std::chrono::seconds(queue_timeout_s);
  options.loop.emulation_fallback_wait = std::chrono::seconds(emulation_fallback_s);
  options.loop.cache_affinity_window = std::chrono::seconds(cache_affinity_s);
  options.curve_secret_key = curve_secret_key;
  options.agent_keys_file = agent_keys_file;
  options.insecure_registries = insecure_registries;
  Result<std::string> grant_key = SharedContextGrantKey(*store);
  if (!grant_key.ok()) return Fail(grant_key.status().message());
  ApiAuth auth(*store, auth_options, *grant_key);
  if (auth.required()) {
    options.loop.contexts.url_query = [&auth](const std::string& digest) {
      return auth.ContextUrlQuery(digest);
    };
    api_options.auth = &auth;
  } else {
    spdlog::warn(
        "API authentication is off (the API listens on loopback {}); set --api-auth on "
        "to require tokens",
        api_listen);
  }

  // Coordinators sharing the database: every one serves the API, and the lease holder
  // alone runs the rest (coordinator/leadership.h). Being deposed ends the process at once
  // (nothing it would do may take effect); its supervisor starts it again, as a standby.
  const auto step_down = [](const std::string& why) {
    spdlog::critical("stepping down: {}; exiting, to start again as a standby", why);
    std::_Exit(3);
  };
  if (leader_name.empty()) leader_name = Hostname() + "/" + api_listen;
  api_options.coordinator_name = leader_name;
  Leadership leadership({.database_url = database_url,
                         .holder = leader_name,
                         .api_url = public_url,
                         .lease = std::chrono::milliseconds(leader_lease_ms),
                         .on_lost = step_down,
                         .on_change = [&metrics](bool leading, int64_t epoch) {
                           metrics.SetLeader(leading, epoch);
                         }});
  ApiQueue api_queue([&leadership] { return leadership.leader_url(); });
  store->AnnounceWork(leader_name);
  Api api(*store, **contexts, api_queue, api_options);
  if (Status started = api.Start(); !started.ok()) return Fail(started.message());
  spdlog::info(
      "API on {}://{}:{}, metrics on {}; waiting for the leader lease", tls ? "https" : "http",
      api_options.listen_host, api.port(),
      metrics_listen.substr(0, metrics_listen.rfind(':') + 1) + std::to_string(metrics_port));
  Result<int64_t> epoch = leadership.Await([&signals] {
    timespec now = {0, 0};
    int signal = sigtimedwait(&signals, nullptr, &now);
    return signal == SIGINT || signal == SIGTERM;
  });
  if (!epoch.ok()) {
    spdlog::info("stopping: {}", epoch.status().message());
    api.Stop();
    return 0;
  }
  store->FenceWrites(*epoch, step_down);
  options.loop.leading = [&leadership] { return leadership.leading(); };

  Coordinator coordinator(*store, metrics, options);
  // The retention's deletes run on a connection of their own, off the loop's.
  Result<std::unique_ptr<Store>> retention_store =
      Store::Open(database_url, 1, std::chrono::milliseconds(commit_read_back_ms));
  if (!retention_store.ok()) return Fail(retention_store.status().message());
  (*retention_store)->FenceWrites(*epoch, step_down);
  Retention retention_thread(**retention_store, metrics,
                             {.keep = *retention, .connected_agents = [&coordinator] {
                                std::vector<std::string> ids;
                                for (const AgentView& agent : coordinator.Agents()) {
                                  ids.push_back(agent.id);
                                }
                                return ids;
                              }});
  // Before the coordinator starts, so no build ends before the finished ones are counted.
  if (Status started = retention_thread.Start(); !started.ok()) return Fail(started.message());
  if (Status started = coordinator.Start(); !started.ok()) return Fail(started.message());
  api_queue.Lead(&coordinator);
  store->StopAnnouncingWork();
  // After Lead: its first read back also takes what this API wrote while it did not lead.
  WorkListener work_listener(
      {.database_url = database_url,
       .self = leader_name,
       .on_work = [&coordinator](const WorkNotice& notice) { coordinator.TakeWork(notice); }});
  work_listener.Start();

  ContextCollector collector(
      **contexts, [&store] { return store->ContextsOfUnfinishedBuilds(); }, metrics,
      context_retention);
  collector.Start();

  spdlog::info(
      "manifold-coordinator ready: API on {}://{}:{}, agents on {}, metrics on {}",
      tls ? "https" : "http", api_options.listen_host, api.port(), coordinator.agent_endpoint(),
      metrics_listen.substr(0, metrics_listen.rfind(':') + 1) + std::to_string(metrics_port));

  int signal = 0;
  while (sigwait(&signals, &signal) == 0 && signal == SIGHUP) coordinator.ReloadAgentKeys();
  spdlog::info("stopping on signal {}", signal);
  api.Stop();
  work_listener.Stop();
  collector.Stop();
  retention_thread.Stop();
  coordinator.Stop();
  return 0;
}
