// Reconciliation: what the coordinator does when an agent says which jobs it holds.
//
// Hello and every heartbeat carry the attempts an agent runs or holds a result of. Two
// views of one farm drift apart when messages are lost or late (a partition, a pause, a
// restart on either side); comparing them on every heartbeat brings them back within one
// heartbeat interval instead of at the job timeout:
//   - an attempt the agent holds that is not the job's current attempt there (the job was
//     retried elsewhere, canceled, or ended) is canceled on the agent;
//   - a current attempt the coordinator gave the agent that the agent does not hold was
//     lost (the agent restarted, or dropped it). Only attempts whose assign the agent has
//     read count: those numbered at most `assigns_received`, the agent's count of assigns
//     read in its session (0 for a hello). An assign it has not read may still be on its
//     way, however late the coordinator handles the heartbeat, and retrying it would run
//     the job twice. The link keeps order, so a heartbeat sent after the agent read an
//     assign lists the job until its result is acknowledged.
// `given` is the jobs the coordinator gave the agent (its session's, with their assigns'
// numbers), so a heartbeat costs what the agent holds, not what the whole farm runs. A
// pure function over the loop's view; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "common/messages.h"
#include "coordinator/job_view.h"

namespace manifold {

struct Reconciliation {
  std::vector<JobRef> to_cancel;  // held by the agent, not current there
  std::vector<JobRef> lost;       // current there, not held by the agent
};

Reconciliation Reconcile(const RunningJobs& running, const GivenJobs& given,
                         const std::string& agent_id, const std::vector<JobRef>& held,
                         uint64_t assigns_received);

}  // namespace manifold
