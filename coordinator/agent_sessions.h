// AgentSessions: the agents connected to this coordinator, how to reach each, the view of
// them that the API reads, and which of them are lost.
//
// A session begins with an agent's hello and ends with its goodbye, its loss (no frame for
// the liveness window) or its key's revocation. Messages from a connection that has not
// said hello yet (an agent whose queue was flushed into a restarted coordinator) are held,
// bounded, and replayed after its hello. Agents that held jobs when the coordinator
// started are awaited for a while and lost if they do not come back.
//
// Thread-safety: everything but Snapshot() belongs to the loop thread. Snapshot() may be
// called from any thread: the loop publishes each agent's entry under a lock when it
// changes, so a reader never copies the sessions themselves.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/messages.h"
#include "coordinator/build_queue.h"
#include "coordinator/job_view.h"
#include "coordinator/metrics.h"

namespace manifold {

struct AgentSession {
  std::string agent_id;
  std::string routing_id;
  std::string public_key;  // CURVE key it connected with; "" in plaintext mode
  std::string hostname;
  std::string version;
  std::vector<PlatformOffer> platforms;
  uint32_t slots = 1;
  GivenJobs jobs;             // running here
  uint64_t assigns_sent = 0;  // in this session; numbers them for reconciliation
  LoopClock::time_point last_seen;
  // After it refused a job for lack of a free slot, it gets no job before this, by when
  // its heartbeat has told how many it holds.
  LoopClock::time_point refused_until;
  bool draining = false;
};

// Why a hello is refused (protocol version, id, platforms, slots), in words the agent's
// operator can act on; nullopt if it is acceptable.
std::optional<std::string> RefuseHello(const HelloMsg& hello);

// The platforms, agents and slots of the sessions, with the waiting and running jobs, as
// the farm's gauges show them.
std::map<Platform, PlatformLoad> PlatformLoads(
    const WaitingJobs& pending, const RunningJobs& running,
    const std::map<std::string, std::unique_ptr<AgentSession>>& sessions);

class AgentSessions {
 public:
  using Map = std::map<std::string, std::unique_ptr<AgentSession>>;  // by agent id

  // Starts (or replaces) the agent's session on `routing_id` and publishes it.
  AgentSession& Open(const HelloMsg& hello, const std::string& routing_id,
                     const std::string& public_key, LoopClock::time_point now);
  // Ends the agent's session, if any, and removes it from the published view.
  void Close(const std::string& agent_id);

  AgentSession* Find(const std::string& agent_id);
  // The session of the connection `routing_id`, or null before its hello.
  AgentSession* FindByRoute(const std::string& routing_id);
  const Map& all() const { return sessions_; }

  // Notes a frame from the session's agent: it is alive.
  void Seen(AgentSession& session, LoopClock::time_point now);

  // Holds a frame from a connection that has not said hello; true for the first one held,
  // when the caller asks the agent to say hello.
  bool HoldUnintroduced(const std::string& routing_id, const std::string& frame,
                        LoopClock::time_point now);
  // The frames held for `routing_id`, in order, and forgets them.
  std::vector<std::string> TakeUnintroduced(const std::string& routing_id);

  // Awaits an agent that held jobs when the coordinator started until `deadline`.
  void Await(const std::string& agent_id, LoopClock::time_point deadline);

  // The agents lost at `now`: connected ones silent for more than `limit`, and awaited ones
  // past their deadline (no longer awaited then). Held frames older than ten windows are
  // dropped on the way.
  std::vector<std::string> Lost(LoopClock::time_point now, LoopClock::duration limit);

  // Brings the agent's published entry up to date with its session (O(log agents)).
  void Publish(const std::string& agent_id);
  // Thread-safe: the published agents, with their last-seen age at `now`.
  std::vector<AgentView> Snapshot(LoopClock::time_point now) const;

 private:
  struct Unintroduced {
    std::vector<std::string> frames;
    size_t bytes = 0;
    LoopClock::time_point first;
  };
  struct Published {
    AgentView view;  // last_seen_ms_ago is filled in by Snapshot()
    LoopClock::time_point last_seen;
  };

  Map sessions_;
  std::map<std::string, std::string> agent_by_route_;
  std::map<std::string, Unintroduced> unintroduced_;      // by routing id
  std::map<std::string, LoopClock::time_point> awaited_;  // by agent id
  mutable std::mutex published_mutex_;
  std::map<std::string, Published> published_;  // by agent id; guarded by published_mutex_
};

}  // namespace manifold
