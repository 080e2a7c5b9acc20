// BenchFarm: the real services a fleet benchmark drives, and the probes it reads them with.
//
// It brings up a farm with ops/farm.sh (through tests/support's Farm: PostgreSQL with its
// default durable settings, docker-registry, the coordinator binary) whose one real agent,
// a synthetic-backend agent, is drained away at once, so the only agents are the
// simulator's. It pushes one synthetic image per platform (made by the agent's
// SyntheticBuilder), uploads one build context, submits builds through the HTTP API, and
// reads PostgreSQL's counters (pg_stat_database, pg_stat_statements), pgbench and the
// coordinator's /proc figures. Used from one thread, except SubmitBuild, which is
// thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/messages.h"
#include "common/platform.h"
#include "common/registry.h"
#include "common/status.h"
#include "tests/support/farm.h"

namespace manifold::bench {

struct SubmittedBuild {
  uint64_t build_id = 0;
  std::vector<uint64_t> job_ids;
};

// PostgreSQL's own counters for the coordinator's database.
struct DbCounters {
  uint64_t transactions = 0;      // xact_commit + xact_rollback
  uint64_t statements = 0;        // pg_stat_statements calls, BEGIN/COMMIT/ROLLBACK excluded
  uint64_t builds_succeeded = 0;  // index pushed
  uint64_t builds_merging = 0;    // every job recorded, index not yet pushed
};

// CPU time and resident memory of a process, from /proc/PID/stat and /proc/PID/status.
struct ProcessSample {
  double cpu_seconds = 0;  // user + system
  uint64_t rss_bytes = 0;
};
Result<ProcessSample> SampleProcess(pid_t pid);

class BenchFarm {
 public:
  // `env` goes to ops/farm.sh and so to the coordinator (MANIFOLD_HEARTBEAT_INTERVAL_MS...).
  explicit BenchFarm(std::map<std::string, std::string> env = {});

  // Up, drain the real agent, enable pg_stat_statements, push the images, upload a context.
  Status Up(const std::vector<Platform>& platforms, const std::string& repository);

  std::string agent_endpoint() const { return "tcp://127.0.0.1:" + std::to_string(agent_port_); }
  const std::string& registry() const { return farm_.registry(); }
  const std::map<Platform, ImageDescriptor>& images() const { return images_; }
  pid_t coordinator_pid() const { return farm_.Pid("coordinator"); }
  test::Farm& farm() { return farm_; }

  // POST /v1/builds of the uploaded context for `platforms`, tagged repository:tag.
  Result<SubmittedBuild> SubmitBuild(const std::vector<Platform>& platforms,
                                     const std::string& tag) const;
  // GET /v1/builds/ID's state.
  Result<std::string> BuildState(uint64_t build_id) const;
  // Whether repository:tag exists in the registry (the build's index was pushed). Asked
  // over one kept-open connection, so polling it often loads the machine little.
  bool TagExists(const std::string& tag) const;

  Result<DbCounters> ReadDbCounters() const;
  // pg_database_size of the coordinator's database.
  Result<uint64_t> DatabaseBytes() const;
  // Rows in each of the coordinator's history tables (builds, jobs, job_events,
  // log_chunks, agents), "table rows, ..." for a person.
  Result<std::string> TableRows() const;
  // pgbench -N against the farm's PostgreSQL (its own database), over TCP as the
  // coordinator connects; returns transactions per second. *command gets what ran.
  Result<double> RunPgbench(int seconds, int clients, std::string* command) const;
  // Restarts the coordinator (a fresh process, e.g. between fleet sizes).
  Status RestartCoordinator();

 private:
  Result<std::string> Psql(const std::string& database, const std::string& sql) const;
  Status WaitReady() const;

  int agent_port_ = 0;  // before farm_, whose options name it
  test::Farm farm_;
  std::string repository_;
  std::string context_digest_;
  std::map<Platform, ImageDescriptor> images_;
  std::unique_ptr<RegistryClient> tag_client_;  // for TagExists; made by Up
};

}  // namespace manifold::bench
