#include "coordinator/log_flow.h"

namespace manifold {

bool LogFlow::Hold(const std::string& agent_id, uint64_t queued) {
  if (queued < max_bytes_ / 2) return false;
  return held_.insert(agent_id).second;
}

std::vector<std::string> LogFlow::Resume(uint64_t queued) {
  if (held_.empty() || queued > max_bytes_ / 4) return {};
  std::vector<std::string> agents(held_.begin(), held_.end());
  held_.clear();
  return agents;
}

std::string LogFlow::TakeNotice(const JobRef& job) {
  auto it = dropped_.find(job);
  if (it == dropped_.end()) return "";
  std::string notice = "\n[manifold: " + std::to_string(it->second) +
                       " bytes of output lost here: the coordinator's output waiting for its "
                       "database was full (--pending-log-max-bytes)]\n";
  dropped_.erase(it);
  return notice;
}

}  // namespace manifold
