// Reconciliation: what the coordinator does when an agent says which jobs it holds.
//
// Hello and every heartbeat carry the attempts an agent runs or holds a result of. Two
// views of one farm drift apart when messages are lost or late (a partition, a pause, a
// restart on either side); comparing them on every heartbeat brings them back within one
// heartbeat interval instead of at the job timeout:
//   - an attempt the agent holds that is not the job's current attempt there (the job was
//     retried elsewhere, canceled, or ended) is canceled on the agent;
//   - a current attempt the coordinator gave the agent that the agent does not hold was
//     lost (the assignment never arrived, or the agent restarted). Only attempts
//     assigned before `assigned_before` count (for a heartbeat, one heartbeat interval
//     before the agent's previous heartbeat): an assignment sent later may still be on
//     its way, and retrying it would run the job twice.
// `given` is the ids of the jobs the coordinator gave the agent (its session's jobs), so a
// heartbeat costs what the agent holds, not what the whole farm runs. A pure function over
// the loop's view; thread-safe.
#pragma once

#include <set>
#include <vector>

#include "common/messages.h"
#include "coordinator/job_view.h"

namespace manifold {

struct Reconciliation {
  std::vector<JobRef> to_cancel;  // held by the agent, not current there
  std::vector<JobRef> lost;       // current there, not held by the agent
};

Reconciliation Reconcile(const RunningJobs& running, const std::set<uint64_t>& given,
                         const std::string& agent_id, const std::vector<JobRef>& held,
                         LoopClock::time_point assigned_before);

}  // namespace manifold
