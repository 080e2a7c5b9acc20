// BuildQueue: what the HTTP API may ask of the coordinator's loop.
//
// The API hands over the jobs of a submitted build, reports a cancel, asks an agent to
// drain, and reads the connected agents; it knows nothing else of the loop. The
// Coordinator implements it; every method is thread-safe and returns without waiting for
// the loop.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/platform.h"
#include "common/status.h"
#include "coordinator/build.h"

namespace manifold {

// What the API shows about a connected agent.
struct AgentView {
  std::string id;
  std::string hostname;
  std::string version;
  std::vector<PlatformOffer> platforms;
  uint32_t slots = 0;
  uint32_t busy = 0;
  std::string state;  // online | draining
  int64_t last_seen_ms_ago = 0;
};

class BuildQueue {
 public:
  virtual ~BuildQueue() = default;

  // Hands the jobs of a newly submitted build to the loop, with the build's secrets
  // (id -> bytes), which the coordinator keeps in memory only, until the build ends.
  virtual void Enqueue(std::vector<QueuedJob> jobs,
                       std::map<std::string, std::string> secrets = {}) = 0;
  // Whether the agent link is encrypted (CURVE); build secrets are sent over no other.
  virtual bool agent_link_encrypted() const = 0;
  // The store has canceled a build; stop the jobs agents hold.
  virtual void BuildCanceled(std::vector<JobRecord> held_jobs) = 0;
  // Asks a connected agent to drain. NotFound if it is not connected.
  virtual Status DrainAgent(const std::string& agent_id) = 0;
  // A snapshot of the connected agents.
  virtual std::vector<AgentView> Agents() const = 0;
  // "" if this coordinator leads; else the API URL of the one that does, where the API
  // redirects what only the leader can do (secrets, drains, the agent list), and "?" if
  // none leads at the moment.
  virtual std::string leader_url() const = 0;
};

}  // namespace manifold
