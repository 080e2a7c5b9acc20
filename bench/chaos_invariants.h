// The chaos run's invariants and figures (bench/chaos.cc), checked after the run from what
// the CLI reported, what PostgreSQL holds and what the registry serves. Each check returns
// every violation it found, one line each naming the build, tag or job, so a failing run
// says exactly what went wrong. Thread-compatible: plain functions over plain data.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/chaos_injector.h"
#include "common/registry.h"

namespace manifold::bench {

// One build of the run: as `manifold build` and `manifold status` reported it and as its
// row in the database is.
struct ChaosBuild {
  int number = 0;       // 1..N in the order of submission
  std::string tag;      // REGISTRY/REPOSITORY:TAG
  uint64_t id = 0;      // 0: the CLI never said "build ID submitted"
  int submissions = 0;  // runs of `manifold build` for it (again while submitting failed)
  int cli_exit = -1;
  std::string cli_outcome;   // succeeded, failed or canceled; else the CLI's last line
  std::string cli_digest;    // the index digest it printed when it succeeded
  std::string status_state;  // `manifold status ID`'s State: line
  std::string status_index;  // and its Index: digest
  std::string state, index_digest, error;
  double created = 0, finished = 0;  // epoch seconds; finished is 0 while it runs
};

struct InvariantResult {
  std::string name;
  std::vector<std::string> violations;
  bool ok() const { return violations.empty(); }
};

// The faults whose time [began, ended] overlaps the build's life (to now if unfinished).
std::vector<const InjectedFault*> FaultsDuring(const ChaosBuild& build,
                                               const std::vector<InjectedFault>& faults,
                                               double now);

// Every build ends, and within `limit_s` of the last fault it lived through.
InvariantResult CheckBuildsEnd(const std::vector<ChaosBuild>& builds,
                               const std::vector<InjectedFault>& faults, double now,
                               double limit_s = 300);
// No build failed or was canceled: every Dockerfile of the run builds, so each failure
// came from the infrastructure. Each violation names the faults the build lived through.
InvariantResult CheckNoInfrastructureFailure(const std::vector<ChaosBuild>& builds,
                                             const std::vector<InjectedFault>& faults, double now);
// Each succeeded build's index holds exactly `platforms`, and each child's config names
// its platform's OS and architecture.
InvariantResult CheckIndexes(const std::vector<ChaosBuild>& builds,
                             const std::vector<std::string>& platforms,
                             const RegistryClient& registry);
// Each tag holds the index of the build for it that succeeded last (by finished time), and
// a tag no build succeeded for holds nothing.
InvariantResult CheckTags(const std::vector<ChaosBuild>& builds, const RegistryClient& registry);
// `jobs_with_two_results`: one line per job the database recorded more than one final
// result for (succeeded, failed or timed_out events).
InvariantResult CheckSingleResults(const std::vector<std::string>& jobs_with_two_results);
// The CLI's outcome and `manifold status` agree with the database's state and index.
InvariantResult CheckCliAgrees(const std::vector<ChaosBuild>& builds);

struct ChaosFigures {
  int builds_lost = 0;        // did not succeed (failed, canceled, never ended, never submitted)
  int wrong_tags = 0;         // CheckTags' violations
  int clean_builds = 0;       // succeeded without living through a fault
  double clean_median_s = 0;  // their median duration (created -> finished)
  int faulted_builds = 0;     // succeeded after living through at least one fault
  // Time a fault added to a build: its duration minus clean_median_s, over faulted_builds.
  double added_p50_s = 0, added_p99_s = 0;
  // The fault kind with the largest median added time, e.g. "coordinator-kill (+12.3 s
  // median over 4 builds)"; "none" without faulted builds.
  std::string bottleneck = "none";
};

ChaosFigures ComputeFigures(const std::vector<ChaosBuild>& builds,
                            const std::vector<InjectedFault>& faults, int wrong_tags, double now);

}  // namespace manifold::bench
