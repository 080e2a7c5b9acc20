// LogFlow: back-pressure on agents' build output while it waits for the database.
//
// JobReports queues the output the store cannot take yet (the database is away or slow),
// and its bytes are capped (--pending-log-max-bytes). Past half the cap, each agent that
// sends output is told to hold it (LogFlowMsg; the agent keeps each job's head and tail)
// until the backlog is down to a quarter, when every held agent is told to resume. Output
// that still arrives past the cap (sent before its agent heard) is dropped, and the job's
// next stored chunk starts with a line saying how much was lost. Pure logic; not
// thread-safe (the loop owns it).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/messages.h"

namespace manifold {

class LogFlow {
 public:
  explicit LogFlow(uint64_t max_bytes) : max_bytes_(max_bytes) {}

  // Whether a chunk of `bytes` fits in a backlog of `queued` bytes.
  bool Fits(uint64_t queued, uint64_t bytes) const { return queued + bytes <= max_bytes_; }
  // Whether `agent_id`, which just sent output, is to be told to hold it now.
  bool Hold(const std::string& agent_id, uint64_t queued);
  // The held agents to tell to resume, once the backlog is low enough (they are forgotten).
  std::vector<std::string> Resume(uint64_t queued);
  // A new session of the agent starts with nothing held.
  void ForgetAgent(const std::string& agent_id) { held_.erase(agent_id); }
  size_t held_agents() const { return held_.size(); }

  // Output of `job` dropped past the cap.
  void Dropped(const JobRef& job, uint64_t bytes) { dropped_[job] += bytes; }
  // The line the job's next stored chunk starts with, "" if nothing was dropped.
  std::string TakeNotice(const JobRef& job);
  // The attempt ended: no chunk of it is stored for a notice.
  void ForgetJob(const JobRef& job) { dropped_.erase(job); }

 private:
  const uint64_t max_bytes_;
  std::set<std::string> held_;          // agent ids told to hold
  std::map<JobRef, uint64_t> dropped_;  // bytes dropped per attempt since its last chunk
};

}  // namespace manifold
