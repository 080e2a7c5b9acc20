// manifold: the client for the manifold build farm, shaped like `docker buildx build`.
//
// Only flag wiring lives here (CLI11 is slow to compile); each command is a function in
// its own file. Exit codes: 0 success, 1 the build or a request failed, 2 bad usage,
// 130 interrupted (Ctrl-C).

#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "cli/agents.h"
#include "cli/build.h"
#include "cli/build_status.h"
#include "cli/imagetools.h"
#include "cli/keygen.h"
#include "cli/login.h"
#include "cli/logs.h"

namespace {

std::atomic<bool> g_interrupted{false};

// Build IDs are positive integers; CLI11's own range check prints an unreadable bound.
const CLI::Validator kBuildId(
    [](std::string& text) -> std::string {
      bool digits = !text.empty() && text.size() <= 18 &&
                    text.find_first_not_of("0123456789") == std::string::npos;
      if (!digits || text.find_first_not_of('0') == std::string::npos) {
        return "invalid build ID \"" + text + "\": use the number `manifold build` printed";
      }
      return "";
    },
    "ID");

}  // namespace

int main(int argc, char** argv) {
  using manifold::BuildOptions;

  CLI::App app{"Build multi-platform container images on a manifold build farm."};
  app.name("manifold");
  app.require_subcommand(1);
  app.fallthrough();  // --server is accepted after the subcommand too
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("manifold: ") + e.what() + " (see `manifold --help`)\n";
  });

  std::string server = "http://127.0.0.1:7080";
  app.add_option("--server", server,
                 "Coordinator URL (default http://127.0.0.1:7080); several coordinators on one "
                 "database: their URLs, comma-separated, tried in turn")
      ->envname("MANIFOLD_SERVER");
  std::string token, ca_file;
  app.add_option("--token", token, "API token for a coordinator that requires one")
      ->envname("MANIFOLD_TOKEN");
  app.add_option("--ca-file", ca_file, "PEM CA certificate to trust for an https:// coordinator")
      ->envname("MANIFOLD_CA_FILE");

  BuildOptions build;
  bool quiet = false;
  CLI::App* build_cmd =
      app.add_subcommand("build", "Build an image for several platforms and push it");
  build_cmd
      ->add_option("--platform", build.platforms, "Target platforms, e.g. linux/amd64,linux/arm64")
      ->required()
      ->allow_extra_args(false);
  build_cmd->add_option("-t,--tag", build.tags, "Image reference to push the index to (repeatable)")
      ->required()
      ->allow_extra_args(false);
  build_cmd->add_option("-f,--file", build.dockerfile,
                        "Dockerfile (default: DIR/Dockerfile; - reads it from stdin)");
  build_cmd
      ->add_option("--build-arg", build.build_args,
                   "Build-time variable K=V, or K from the environment")
      ->allow_extra_args(false);
  build_cmd->add_option("--target", build.target, "Build stage to stop at");
  build_cmd
      ->add_option("--emulation", build.emulation,
                   "Emulated (QEMU) agents: never, fallback (after waiting for a native "
                   "agent; the default) or allow")
      ->check(CLI::IsMember({"never", "fallback", "allow"}));
  build_cmd->add_option("--label", build.labels, "Image label KEY=VALUE (repeatable)")
      ->allow_extra_args(false);
  build_cmd
      ->add_option("--annotation", build.annotations,
                   "Annotation KEY=VALUE or manifest:KEY=VALUE (each platform's manifest), "
                   "index:KEY=VALUE (the index; OCI only) (repeatable)")
      ->allow_extra_args(false);
  build_cmd->add_flag("--no-cache", build.no_cache, "Do not use cached layers");
  build_cmd->add_flag("--pull", build.pull, "Always pull base images, even ones present");
  build_cmd
      ->add_option("--secret", build.secrets,
                   "Secret for RUN --mount=type=secret: id=ID,src=FILE or id=ID,env=VAR "
                   "(repeatable)")
      ->allow_extra_args(false);
  build_cmd
      ->add_option("--network", build.network,
                   "Network for RUN steps: default (the agent's sandbox: private, no host or "
                   "metadata addresses), none, or host (needs --allow network.host)")
      ->check(CLI::IsMember({"default", "none", "host"}));
  build_cmd
      ->add_option("--cache-from", build.cache_from,
                   "Registry cache to read: type=registry,ref=REPO[:TAG] (repeatable; each "
                   "platform reads its own REPO/OS-ARCH)")
      ->allow_extra_args(false);
  build_cmd
      ->add_option("--cache-to", build.cache_to,
                   "Registry cache to write: type=registry,ref=REPO[:TAG][,mode=min|max]")
      ->allow_extra_args(false);
  build_cmd
      ->add_option("--allow", build.allow,
                   "Entitlement: network.host (the agent must run with "
                   "--allow-insecure-entitlement network.host) (repeatable)")
      ->allow_extra_args(false)
      ->type_name("ENTITLEMENT");
  const struct {
    const char* flag;
    std::string* value;
    const char* type;
    const char* help;
  } job_limits[] = {
      {"--job-memory", &build.job_memory, "SIZE", "Memory for each platform's job, e.g. 512m"},
      {"--job-cpus", &build.job_cpus, "N", "CPUs for each platform's job, e.g. 1.5"},
      {"--job-disk", &build.job_disk, "SIZE", "Disk for each job's context and work, e.g. 10g"},
  };
  for (const auto& limit : job_limits) {
    build_cmd
        ->add_option(limit.flag, *limit.value, std::string(limit.help) + " (default: the agent's)")
        ->type_name(limit.type);
  }
  build_cmd
      ->add_option("--job-pids", build.job_pids,
                   "Processes for each platform's job, e.g. 512 (default: the agent's)")
      ->type_name("N");
  uint64_t context_warn_mib = build.context_warn_bytes >> 20;
  uint64_t context_limit_mib = build.context_limit_bytes >> 20;
  build_cmd
      ->add_option("--context-warn-mib", context_warn_mib,
                   "Warn when the packed context is larger (default 100)")
      ->envname("MANIFOLD_CONTEXT_WARN_MIB");
  build_cmd
      ->add_option("--context-limit-mib", context_limit_mib,
                   "Refuse a packed context larger than this (default 2048)")
      ->envname("MANIFOLD_CONTEXT_LIMIT_MIB")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 20));
  build_cmd->add_option("--metadata-file", build.metadata_file,
                        "Write the result's digest and names as JSON to this file");
  build_cmd
      ->add_option("--progress", build.progress,
                   "Output: auto (tty on a terminal, else plain), plain, tty or quiet")
      ->check(CLI::IsMember({"auto", "plain", "tty", "quiet"}));
  build_cmd->add_flag("-q,--quiet", quiet, "Print only the index digest (--progress quiet)");
  build_cmd->add_flag("--push")->description(
      "Accepted for buildx compatibility; manifold always pushes");
  build_cmd->add_option("--idempotency-key", build.idempotency_key,
                        "Submitting again with the same key returns the same build");
  build_cmd->add_flag("--detach", build.detach,
                      "On Ctrl-C stop following but leave the build running");
  build_cmd->add_option("DIR", build.context_dir, "Build context directory")->required();

  CLI::App* agents_cmd = app.add_subcommand("agents", "List connected agents");

  int64_t cancel_id = 0;
  CLI::App* cancel_cmd = app.add_subcommand("cancel", "Cancel a queued or running build");
  cancel_cmd->add_option("ID", cancel_id, "Build ID")->required()->check(kBuildId);

  int64_t status_id = 0;
  CLI::App* status_cmd = app.add_subcommand("status", "Show a build and its jobs");
  status_cmd->add_option("ID", status_id, "Build ID")->required()->check(kBuildId);

  int list_limit = 20;
  CLI::App* ls_cmd = app.add_subcommand("builds", "List recent builds, newest first");
  ls_cmd->alias("ls");
  ls_cmd->add_option("-n,--limit", list_limit, "How many builds to list (default 20)")
      ->check(CLI::Range(1, 1000));

  int64_t logs_id = 0;
  bool follow = false;
  CLI::App* logs_cmd = app.add_subcommand("logs", "Print a build's logs");
  logs_cmd->add_option("ID", logs_id, "Build ID")->required()->check(kBuildId);
  logs_cmd->add_flag("-f,--follow", follow, "Keep printing until the build is final");

  std::string inspect_ref;
  bool raw = false;
  CLI::App* imagetools_cmd = app.add_subcommand("imagetools", "Inspect images in a registry");
  imagetools_cmd->require_subcommand(1);
  CLI::App* inspect_cmd =
      imagetools_cmd->add_subcommand("inspect", "Show an image or index, like buildx imagetools");
  inspect_cmd->add_option("REF", inspect_ref, "Image reference")->required();
  inspect_cmd->add_flag("--raw", raw, "Print the manifest's exact bytes");
  manifold::ImagetoolsCreateOptions create;
  CLI::App* create_cmd = imagetools_cmd->add_subcommand(
      "create", "Merge pushed images into one index under each tag, like buildx imagetools");
  create_cmd->add_option("-t,--tag", create.tags, "Reference to push the index to (repeatable)")
      ->required()
      ->allow_extra_args(false);
  create_cmd
      ->add_option("--annotation", create.annotations,
                   "Index annotation index:KEY=VALUE (OCI indexes only; repeatable)")
      ->allow_extra_args(false);
  create_cmd->add_option("SRC", create.sources, "Images or indexes to merge")->required();
  create_cmd->add_flag("--append", create.append,
                       "Add to what the first tag holds (a source replaces its platform)");
  create_cmd->add_flag("--dry-run", create.dry_run, "Print the index instead of pushing it");

  manifold::LoginOptions login;
  bool password_stdin = false;
  CLI::App* login_cmd =
      app.add_subcommand("login", "Log in to a registry (stores credentials like docker login)");
  login_cmd->add_option("REGISTRY", login.registry, "Registry host[:port]")->required();
  login_cmd->add_option("-u,--username", login.username, "User name")->required();
  login_cmd->add_flag("--password-stdin", password_stdin, "Read the password from stdin")
      ->required();
  // Registries spoken to over plain HTTP (loopback ones without a certs.d entry always are).
  std::vector<std::string> insecure_registries;
  // docker's place by default; another for runners that may not write /etc.
  std::string certs_dir = manifold::RegistryOptions().certs_dir;
  for (CLI::App* cmd : {inspect_cmd, create_cmd, login_cmd}) {
    cmd->add_option("--insecure-registry", insecure_registries,
                    "Use plain HTTP, unencrypted, for this registry HOST[:PORT] (repeatable)")
        ->allow_extra_args(false);
    cmd->add_option("--certs-dir", certs_dir,
                    "Per-registry certificates: HOST[:PORT]/ca.crt, client.cert, client.key")
        ->envname("MANIFOLD_CERTS_DIR")
        ->capture_default_str();
  }

  std::string keygen_prefix, keygen_name, keygen_role;
  CLI::App* keygen_cmd = app.add_subcommand(
      "keygen", "Make a CURVE key pair for the agent link (PREFIX.key and PREFIX.pub)");
  keygen_cmd->add_option("PREFIX", keygen_prefix, "Path without extension, e.g. agent-x86-01")
      ->required();
  keygen_cmd->add_option("--name", keygen_name, "Name in the .pub line (default: PREFIX's name)");
  keygen_cmd
      ->add_option("--role", keygen_role,
                   "Whose pair it is, to print where its files go (default: both ways)")
      ->check(CLI::IsMember({"coordinator", "agent"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;  // --help is a success; every other parse error is usage
  }

  // ApiClient reads its credentials from the environment, flags included.
  if (!token.empty()) setenv("MANIFOLD_TOKEN", token.c_str(), 1);
  if (!ca_file.empty()) setenv("MANIFOLD_CA_FILE", ca_file.c_str(), 1);
  if (keygen_cmd->parsed()) {
    return manifold::RunKeygen(keygen_prefix, keygen_name, keygen_role, &std::cout, &std::cerr);
  }
  if (build_cmd->parsed()) {
    build.server = server;
    // Ctrl-C (and SIGTERM from a CI runner) ends following; RunBuild then cancels.
    struct sigaction action = {};
    action.sa_handler = [](int) { g_interrupted = true; };
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
    build.interrupted = &g_interrupted;
    if (quiet) build.progress = "quiet";
    if (build.progress == "auto") build.progress = isatty(STDOUT_FILENO) ? "tty" : "plain";
    build.dockerfile_stdin = &std::cin;
    build.context_warn_bytes = context_warn_mib << 20;
    build.context_limit_bytes = context_limit_mib << 20;
    return manifold::RunBuild(build, manifold::LookupProcessEnv, &std::cout, &std::cerr);
  }
  if (status_cmd->parsed()) return manifold::RunStatus(server, status_id, &std::cout, &std::cerr);
  if (agents_cmd->parsed()) return manifold::RunAgents(server, &std::cout, &std::cerr);
  if (cancel_cmd->parsed()) return manifold::RunCancel(server, cancel_id, &std::cout, &std::cerr);
  if (ls_cmd->parsed()) return manifold::RunList(server, list_limit, &std::cout, &std::cerr);
  if (logs_cmd->parsed()) {
    return manifold::RunLogs(server, logs_id, follow, std::chrono::milliseconds(250), &std::cout,
                             &std::cerr);
  }
  manifold::RegistryOptions registry_options;
  registry_options.insecure_registries = insecure_registries;
  registry_options.certs_dir = certs_dir;
  create.registry_options = registry_options;
  login.registry_options = registry_options;
  if (create_cmd->parsed()) return manifold::RunImagetoolsCreate(create, &std::cout, &std::cerr);
  if (login_cmd->parsed()) return manifold::RunLogin(login, &std::cin, &std::cout, &std::cerr);
  if (inspect_cmd->parsed()) {
    return manifold::RunImagetoolsInspect(inspect_ref, raw, &std::cout, &std::cerr,
                                          registry_options);
  }
  return 2;
}
