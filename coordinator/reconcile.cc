#include "coordinator/reconcile.h"

#include <set>

namespace manifold {

Reconciliation Reconcile(const RunningJobs& running, const std::set<uint64_t>& given,
                         const std::string& agent_id, const std::vector<JobRef>& held,
                         LoopClock::time_point assigned_before) {
  Reconciliation out;
  std::set<JobRef> holds(held.begin(), held.end());
  for (const JobRef& job : holds) {
    auto it = running.find(job.job_id);
    bool current = it != running.end() && it->second.job == job && it->second.agent_id == agent_id;
    if (!current) out.to_cancel.push_back(job);
  }
  for (uint64_t job_id : given) {
    auto it = running.find(job_id);
    if (it == running.end()) continue;
    const RunningJob& job = it->second;
    if (job.agent_id == agent_id && !holds.count(job.job) && job.assigned_at < assigned_before) {
      out.lost.push_back(job.job);
    }
  }
  return out;
}

}  // namespace manifold
