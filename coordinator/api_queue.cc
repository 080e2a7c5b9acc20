#include "coordinator/api_queue.h"

namespace manifold {

// Not leading: the store announced the build or cancel in its own transaction, and the
// API redirected anything with secrets to the leader, so there is nothing left to hand on.
void ApiQueue::Enqueue(std::vector<QueuedJob> jobs, std::map<std::string, std::string> secrets) {
  if (BuildQueue* loop = loop_) loop->Enqueue(std::move(jobs), std::move(secrets));
}

bool ApiQueue::agent_link_encrypted() const {
  BuildQueue* loop = loop_;
  return loop != nullptr && loop->agent_link_encrypted();
}

void ApiQueue::BuildCanceled(std::vector<JobRecord> held_jobs) {
  if (BuildQueue* loop = loop_) loop->BuildCanceled(std::move(held_jobs));
}

Status ApiQueue::DrainAgent(const std::string& agent_id) {
  if (BuildQueue* loop = loop_) return loop->DrainAgent(agent_id);
  return Status::Unavailable("this coordinator does not lead; ask the leader to drain " + agent_id);
}

std::vector<AgentView> ApiQueue::Agents() const {
  if (BuildQueue* loop = loop_) return loop->Agents();
  return {};
}

std::string ApiQueue::leader_url() const {
  if (loop_ != nullptr) return "";
  std::string url = leader_url_();
  return url.empty() ? "?" : url;
}

}  // namespace manifold
