// ChaosBuilds: the chaos run's builds (bench/chaos.cc), each submitted and followed by the
// real `manifold build`, one process per build; and afterwards what the database and
// `manifold status` say about each. A build whose CLI exits before the coordinator took it
// (the coordinator or its database was down: a submission fails at once then, for any
// user) is submitted again with the same idempotency key, since the run is about what the
// farm does with the builds it took. Also the database probes the run needs. Used from
// one thread; the probes are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/chaos_invariants.h"
#include "common/status.h"
#include "tests/support/farm.h"
#include "tests/support/subprocess.h"

namespace manifold::bench {

class ChaosBuilds {
 public:
  // Writes the builds' context (a small Dockerfile whose RUN step differs per build) into
  // `dir`, where the CLIs' logs go too; each build is for every one of `platforms`.
  ChaosBuilds(const test::Farm* farm, std::vector<std::string> platforms, std::string dir,
              uint64_t seed);

  // Starts the next build's CLI, pushing to `tag` (REGISTRY/REPOSITORY:TAG).
  void Submit(const std::string& tag);
  // Looks at each CLI once: collects those that ended, submits again those refused (2 s
  // apart). From `deadline` (epoch seconds) on, stops those still running and submits
  // nothing again. True when every CLI has ended.
  bool Poll(double now, double deadline);
  // Each build's database row and `manifold status`.
  Status ReadOutcomes();

  const std::vector<ChaosBuild>& builds() const { return builds_; }

 private:
  struct Cli {
    std::unique_ptr<test::Subprocess> process;
    double retry_at = 0;  // when to submit again; 0: not refused
    bool done = false;
  };
  void Start(size_t i);

  const test::Farm* farm_;
  std::vector<std::string> platforms_;
  std::string dir_;
  uint64_t seed_;
  std::vector<ChaosBuild> builds_;
  std::vector<Cli> clis_;
};

// Whether no build is queued, running or merging.
bool AllBuildsEnded(const test::Farm& farm);
// Whether some job is pushing its image now.
bool SomeJobPushing(const test::Farm& farm);
// The agents a job is assigned to now, by name.
std::vector<std::string> BusyAgents(const test::Farm& farm);
// One line per job the database recorded more than one final result for (succeeded,
// failed or timed_out events), naming its build, platform, attempts and agents.
Result<std::vector<std::string>> JobsWithTwoResults(const test::Farm& farm);

}  // namespace manifold::bench
