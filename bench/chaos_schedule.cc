#include "bench/chaos_schedule.h"

#include <array>
#include <random>
#include <utility>

namespace manifold::bench {
namespace {

using std::chrono::milliseconds;

// A number in [low, high], from the generator's raw output (modulo bias is irrelevant here).
int64_t Between(std::mt19937_64& rng, int64_t low, int64_t high) {
  return low + static_cast<int64_t>(rng() % static_cast<uint64_t>(high - low + 1));
}

}  // namespace

const char* FaultKindName(FaultKind kind) {
  switch (kind) {
    case FaultKind::kAgentKill:
      return "agent-kill";
    case FaultKind::kAgentPause:
      return "agent-pause";
    case FaultKind::kAgentDrain:
      return "agent-drain";
    case FaultKind::kCoordinatorKill:
      return "coordinator-kill";
    case FaultKind::kPostgresRestart:
      return "postgres-restart";
    case FaultKind::kRegistryRestart:
      return "registry-restart";
  }
  return "unknown";
}

std::vector<Fault> ChaosSchedule(const ScheduleOptions& options) {
  std::mt19937_64 rng(options.seed);
  std::vector<Fault> faults;
  if (options.faults <= 0) return faults;
  const int64_t slice = options.span.count() / options.faults;
  std::array<FaultKind, kFaultKinds> round = {
      FaultKind::kAgentKill,       FaultKind::kAgentPause,      FaultKind::kAgentDrain,
      FaultKind::kCoordinatorKill, FaultKind::kPostgresRestart, FaultKind::kRegistryRestart};
  for (int i = 0; i < options.faults; ++i) {
    if (i % kFaultKinds == 0) {
      for (int j = kFaultKinds - 1; j > 0; --j) std::swap(round[j], round[Between(rng, 0, j)]);
    }
    Fault fault;
    fault.kind = round[i % kFaultKinds];
    fault.at = milliseconds(slice * i + Between(rng, 0, slice / 2));
    switch (fault.kind) {
      case FaultKind::kAgentKill:
      case FaultKind::kAgentPause:
      case FaultKind::kAgentDrain:
        fault.target = options.agents.empty()
                           ? ""
                           : options.agents[Between(rng, 0, options.agents.size() - 1)];
        break;
      case FaultKind::kCoordinatorKill:
        fault.target = "coordinator";
        break;
      case FaultKind::kPostgresRestart:
        fault.target = "postgres";
        break;
      case FaultKind::kRegistryRestart:
        fault.target = "registry";
        break;
    }
    fault.hold = fault.kind == FaultKind::kAgentPause
                     ? options.liveness_limit + milliseconds(Between(rng, 1000, 3000))
                     : milliseconds(Between(rng, 1000, 4000));
    faults.push_back(fault);
  }
  return faults;
}

}  // namespace manifold::bench
