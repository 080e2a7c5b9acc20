// `manifold build`: the buildx-shaped command that packs a context, submits a
// multi-platform build to the coordinator and follows it to the end.
//
// Everything the user can get wrong locally (platforms, tags, the context directory, the
// Dockerfile, build args) is checked before anything is sent, so a typo costs no upload.
// The context travels as a deterministic tar named by its sha256, and is uploaded only
// when the coordinator does not already hold it; its size is shown first, a large one is
// warned about and a too large one refused, each naming its largest entries so the user
// knows what to add to .dockerignore. When the context lies in a git work tree, the
// origin URL (without credentials) and HEAD's commit go with the build as the index's
// source and revision annotations. Progress goes to `out`, errors to `err`;
// the last line of `out` on success is the image index digest, which CI can capture.
//
// Thread-safety: RunBuild runs on the caller's thread and touches only its arguments.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include "cli/api_client.h"
#include "cli/build_args.h"

namespace manifold {

struct BuildOptions {
  std::string server;                   // coordinator URL, e.g. "http://127.0.0.1:7080"
  std::vector<std::string> platforms;   // each may be a comma-separated list
  std::vector<std::string> tags;        // -t/--tag, at least one
  std::string dockerfile;               // -f/--file; "" means CONTEXT_DIR/Dockerfile
  std::vector<std::string> build_args;  // --build-arg K=V or K
  std::string target;                   // --target
  std::string emulation;                // --emulation never|fallback|allow; "" = default
  std::string metadata_file;            // --metadata-file; "" writes none
  std::string progress = "auto";        // auto (= plain here)|plain|tty|quiet
  std::string idempotency_key;          // --idempotency-key; "" sends none
  std::string context_dir;              // the positional DIR
  // --label K=V; --annotation K=V, manifest:K=V or index:K=V.
  std::vector<std::string> labels;
  std::vector<std::string> annotations;
  // --no-cache; --pull (always pull base images).
  bool no_cache = false;
  bool pull = false;
  // --secret id=ID,src=FILE or id=ID,env=VAR (buildx's form).
  std::vector<std::string> secrets;
  // --network default|none|host; --allow ENTITLEMENT (only network.host is supported).
  std::string network = "default";
  std::vector<std::string> allow;
  // --cache-from and --cache-to, buildx's syntax: type=registry,ref=REPO[,mode=min|max].
  std::vector<std::string> cache_from;
  std::vector<std::string> cache_to;
  // --job-memory SIZE, --job-disk SIZE, --job-cpus N, --job-pids N; "" and 0 leave the
  // agent's defaults.
  std::string job_memory;
  std::string job_disk;
  std::string job_cpus;
  uint64_t job_pids = 0;
  // Where `-f -` reads the Dockerfile from (std::cin in the program).
  std::istream* dockerfile_stdin = nullptr;
  // A packed context above warn_bytes is reported with its largest entries; one above
  // limit_bytes is refused before upload (the coordinator's default is 2 GiB).
  uint64_t context_warn_bytes = 100ull << 20;
  uint64_t context_limit_bytes = 2ull << 30;
  std::chrono::milliseconds poll_interval{250};
  std::chrono::milliseconds unavailable_grace{60000};
  // Ctrl-C: set by the signal handler. It cancels the build, or with `detach` only stops
  // following it.
  const std::atomic<bool>* interrupted = nullptr;
  bool detach = false;
};

// Runs the build and returns the process exit code: 0 when the build succeeded, 1 when
// it failed, was canceled, or could not be submitted (the reason is one line on *err).
// `env` resolves `--build-arg K` values.
// The exit status after Ctrl-C, as shells report a process ended by SIGINT.
inline constexpr int kInterruptedExit = 130;

int RunBuild(const BuildOptions& options, const EnvLookup& env, std::ostream* out,
             std::ostream* err);

// The message for a failed build: its own error, else each failed job's
// "platform: error" ("build 12 failed: linux/arm64: exit status 1").
std::string BuildFailureMessage(const BuildInfo& build);

}  // namespace manifold
