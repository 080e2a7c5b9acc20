#include "coordinator/reconcile.h"

#include <set>

namespace manifold {

Reconciliation Reconcile(const RunningJobs& running, const GivenJobs& given,
                         const std::string& agent_id, const std::vector<JobRef>& held,
                         uint64_t assigns_received) {
  Reconciliation out;
  std::set<JobRef> holds(held.begin(), held.end());
  for (const JobRef& job : holds) {
    auto it = running.find(job.job_id);
    bool current = it != running.end() && it->second.job == job && it->second.agent_id == agent_id;
    if (!current) out.to_cancel.push_back(job);
  }
  for (const auto& [job_id, assign] : given) {
    auto it = running.find(job_id);
    if (it == running.end()) continue;
    const RunningJob& job = it->second;
    if (job.agent_id == agent_id && !holds.count(job.job) && assign <= assigns_received) {
      out.lost.push_back(job.job);
    }
  }
  return out;
}

}  // namespace manifold
