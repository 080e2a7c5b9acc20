// ChaosSchedule: the faults of one chaos run (bench/chaos.cc), derived from a seed alone, so
// that a seed names a run and a failing run can be repeated. A pure function over
// mt19937_64's raw output (whose sequence the standard fixes), without the standard's
// distributions (whose algorithms it does not). Thread-safe: no state.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace manifold::bench {

enum class FaultKind {
  kAgentKill,        // SIGKILL to an agent and its buildah, started again after `hold`
  kAgentPause,       // SIGSTOP to an agent for `hold` (past the liveness limit), then SIGCONT
  kAgentDrain,       // SIGTERM to an agent (it drains for its short grace), then a fresh one
  kCoordinatorKill,  // SIGKILL to the coordinator, started again after `hold`
  kPostgresRestart,  // PostgreSQL stopped (fast shutdown) for `hold`, then started
  kRegistryRestart,  // the registry stopped while a job pushes, started again after `hold`
};
constexpr int kFaultKinds = 6;

// "agent-kill", "agent-pause", ...
const char* FaultKindName(FaultKind kind);

struct Fault {
  std::chrono::milliseconds at{0};  // from the run's start
  FaultKind kind = FaultKind::kAgentKill;
  std::string target;                 // an agent's name, coordinator, postgres or registry
  std::chrono::milliseconds hold{0};  // how long the target stays down or paused
};

struct ScheduleOptions {
  uint64_t seed = 1;
  int faults = 6;
  std::chrono::milliseconds span{60000};  // every fault starts within [0, span)
  std::vector<std::string> agents;        // the agent faults' targets
  // A pause lasts longer than this (the coordinator's liveness limit: heartbeat interval
  // times missed heartbeats), so that the agent is declared lost.
  std::chrono::milliseconds liveness_limit{1500};
};

// `faults` faults in time order, one in each equal slice of the span (at a random point of
// its first half, so a fault has time to play out before the next). Kinds come in rounds
// holding each kind once, shuffled, so any run of six or more faults has every kind.
std::vector<Fault> ChaosSchedule(const ScheduleOptions& options);

}  // namespace manifold::bench
