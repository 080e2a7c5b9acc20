// ApiQueue: the BuildQueue the API sees on a coordinator that may or may not lead.
//
// Every coordinator on one database serves the API. Until this one leads, its API writes
// builds and cancels to the database only (the store announces them to the leader's loop,
// coordinator/work_listener.h), and redirects what needs the leader's memory (build
// secrets, drains, the agent list) to the leader's URL, which leader_url() reads from the
// lease. Once it leads, Lead() hands every call to its Coordinator. Thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "coordinator/build_queue.h"

namespace manifold {

class ApiQueue final : public BuildQueue {
 public:
  // `leader_url`: the API URL of the coordinator leading now, "" if none does.
  explicit ApiQueue(std::function<std::string()> leader_url) : leader_url_(std::move(leader_url)) {}

  // From now on this coordinator leads, and `loop` (not owned; outlives the API) answers.
  void Lead(BuildQueue* loop) { loop_ = loop; }

  void Enqueue(std::vector<QueuedJob> jobs, std::map<std::string, std::string> secrets) override;
  bool agent_link_encrypted() const override;
  void BuildCanceled(std::vector<JobRecord> held_jobs) override;
  Status DrainAgent(const std::string& agent_id) override;
  std::vector<AgentView> Agents() const override;
  std::string leader_url() const override;

 private:
  const std::function<std::string()> leader_url_;
  std::atomic<BuildQueue*> loop_{nullptr};
};

}  // namespace manifold
