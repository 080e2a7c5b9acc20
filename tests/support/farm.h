// Farm: a complete local manifold farm for one test, started with the same script the
// quickstart uses (ops/farm.sh): PostgreSQL, a registry holding a two-platform base
// image, the coordinator, and agents (by default one linux/amd64 and one linux/arm64
// agent, emulated on an x86-64 host). Free loopback ports and a private directory per
// farm; the destructor stops every process, also when the test failed. A test can stop,
// kill and start single processes to see what the rest does meanwhile. Not thread-safe;
// one per test.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/http_client.h"
#include "common/status.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace manifold::test {

struct FarmOptions {
  // Agents as "NAME:PLATFORM" (ops/farm.sh MANIFOLD_FARM_AGENTS); empty means the script's
  // default, amd64-1 for linux/amd64 and arm64-1 for linux/arm64.
  std::vector<std::string> agents;
  // More environment for ops/farm.sh and so for every program it starts, e.g.
  // MANIFOLD_HEARTBEAT_INTERVAL_MS for the coordinator or MANIFOLD_DRAIN_GRACE for agents.
  std::map<std::string, std::string> env;
};

class Farm {
 public:
  Farm() = default;
  explicit Farm(FarmOptions options) : options_(std::move(options)) {}
  ~Farm();
  Farm(const Farm&) = delete;
  Farm& operator=(const Farm&) = delete;

  // Brings the farm up (bounded by the script's own timeouts and `timeout`).
  Status Up(std::chrono::seconds timeout = std::chrono::seconds(240));
  void Down();

  // One process by name: postgres, registry, coordinator or an agent's name.
  // Stop: SIGTERM (an agent drains first; the script's MANIFOLD_FARM_STOP_TIMEOUT bounds
  // the wait), ok only if the process exited without needing SIGKILL.
  Status Stop(const std::string& name, std::chrono::seconds timeout = std::chrono::seconds(120));
  // Kill: SIGKILL to the process and everything it started, as if its host died.
  Status Kill(const std::string& name);
  // Start: again, configured as Up did; returns once it is ready (an agent: welcomed by
  // the coordinator, if that runs).
  Status Start(const std::string& name, std::chrono::seconds timeout = std::chrono::seconds(120));
  // Start with more environment for this start only, e.g. {"MANIFOLD_WARM_START", "false"}.
  Status Start(const std::string& name, const std::map<std::string, std::string>& env,
               std::chrono::seconds timeout = std::chrono::seconds(120));
  // The pid of a running process of this farm, 0 if it is not running.
  pid_t Pid(const std::string& name) const;

  const std::string& server_url() const { return server_url_; }  // http://127.0.0.1:PORT
  // Every coordinator's URL, comma-separated (two with MANIFOLD_FARM_COORDINATORS=2).
  const std::string& server_urls() const { return server_urls_; }
  const std::string& registry() const { return registry_; }          // 127.0.0.1:PORT
  const std::string& database_url() const { return database_url_; }  // postgresql://...
  const std::string& dir() const { return dir_->path(); }
  // The farm's MANIFOLD_FARM_DIR, for scripts that act on it (ops/autoscaling/local-scaler.sh).
  std::string farm_dir() const { return dir_->path() + "/farm"; }

  // One request to the coordinator's HTTP API (`path` starts with /); a transport error
  // (the coordinator is down) is an error, any HTTP status is a response.
  Result<HttpResponse> Api(const std::string& method, const std::string& path,
                           const std::string& body = "") const;
  // Uploads a context holding one small file and starts a build of `dockerfile` for
  // linux/amd64, tagged REGISTRY/tag; the build's id.
  Result<uint64_t> SubmitBuild(const std::string& dockerfile, const std::string& tag) const;
  // The same for `platforms` (e.g. {"linux/arm64"}).
  Result<uint64_t> SubmitBuild(const std::string& dockerfile, const std::string& tag,
                               const std::vector<std::string>& platforms) const;
  // GET /v1/builds/ID as JSON; an error unless the coordinator answered 200 with JSON.
  Result<nlohmann::json> GetBuild(uint64_t id) const;
  // The build once it reached a final state (succeeded, failed or canceled); null JSON if
  // it did not within `timeout`.
  nlohmann::json FinishedBuild(uint64_t id, std::chrono::milliseconds timeout) const;
  // GET /metrics of the coordinator (name "coordinator") or of an agent by name, at the
  // address its log announced last (agents pick free ports); an error unless it answered
  // 200.
  Result<std::string> Metrics(const std::string& name) const;

  // Runs the `manifold` CLI against this farm.
  CommandResult Manifold(const std::vector<std::string>& args,
                         std::chrono::seconds timeout = std::chrono::seconds(300)) const;
  // One process's whole log (coordinator, an agent, registry, postgres), "" if none.
  std::string Log(const std::string& name) const;
  // The tail of one process's log, for failure messages.
  std::string LogTail(const std::string& name) const;

 private:
  std::map<std::string, std::string> Env() const;
  Status Script(const std::string& command, const std::string& name, std::chrono::seconds timeout,
                const std::map<std::string, std::string>& extra_env = {}) const;

  FarmOptions options_;
  std::unique_ptr<TempDir> dir_;
  std::map<std::string, std::string> ports_;
  std::string server_url_;
  std::string server_urls_;
  std::string registry_;
  std::string database_url_;
  bool up_ = false;
};

// The value of one series in a /metrics text (labels as prometheus-cpp writes them,
// sorted by name), or -1 when it is absent.
double MetricSample(const std::string& text, const std::string& series);

// A farm for a suite's SetUpTestSuite, brought up with `options`; null, with the reason on
// stderr, when it did not come up (each test then fails on it).
std::unique_ptr<Farm> StartSuiteFarm(FarmOptions options);

// Paths of the source tree and the build tree the tests were built from.
std::string SourceDir();
std::string BinaryDir();

}  // namespace manifold::test
