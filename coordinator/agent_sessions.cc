#include "coordinator/agent_sessions.h"

namespace manifold {

namespace {
// Bounds on what a connection may send before its hello.
constexpr size_t kMaxUnintroducedFrames = 10000;
constexpr size_t kMaxUnintroducedBytes = 64u << 20;
}  // namespace

std::optional<std::string> RefuseHello(const HelloMsg& hello) {
  if (hello.protocol_version != kProtocolVersion) {
    return "agent protocol version " + std::to_string(hello.protocol_version) +
           " is not supported (coordinator speaks " + std::to_string(kProtocolVersion) +
           "); upgrade the agent or the coordinator so they match";
  }
  if (hello.agent_id.empty() || hello.agent_id.size() > 253) {
    return "agent id must be 1 to 253 characters; set --id";
  }
  if (hello.platforms.empty()) return "agent offers no platform; set --platform";
  if (hello.slots == 0 || hello.slots > 1024) return "agent slots must be 1 to 1024";
  return std::nullopt;
}

std::map<Platform, PlatformLoad> PlatformLoads(
    const WaitingJobs& pending, const RunningJobs& running,
    const std::map<std::string, std::unique_ptr<AgentSession>>& sessions) {
  std::map<Platform, PlatformLoad> load;
  for (const auto& [job_id, waiting] : pending) ++load[waiting.job.platform].pending;
  for (const auto& [job_id, job] : running) ++load[job.platform].running;
  for (const auto& [agent_id, session] : sessions) {
    for (const PlatformOffer& offer : session->platforms) {
      PlatformLoad& l = load[offer.platform];
      if (session->draining) {
        ++l.agents_draining;
      } else if (offer.emulated) {
        ++l.agents_emulated;
      } else {
        ++l.agents_native;
      }
      l.slots_total += static_cast<int>(session->slots);
      l.slots_busy += static_cast<int>(session->jobs.size());
      if (!offer.emulated) {
        ++l.native_agents;
        l.native_slots += static_cast<int>(session->slots);
      }
    }
  }
  return load;
}

AgentSession& AgentSessions::Open(const HelloMsg& hello, const std::string& routing_id,
                                  const std::string& public_key, LoopClock::time_point now) {
  if (auto existing = sessions_.find(hello.agent_id); existing != sessions_.end()) {
    agent_by_route_.erase(existing->second->routing_id);
  }
  auto session = std::make_unique<AgentSession>();
  session->agent_id = hello.agent_id;
  session->routing_id = routing_id;
  session->public_key = public_key;
  session->hostname = hello.hostname;
  session->version = hello.version;
  session->platforms = hello.platforms;
  session->slots = hello.slots;
  session->last_seen = now;
  AgentSession& opened = *(sessions_[hello.agent_id] = std::move(session));
  agent_by_route_[routing_id] = hello.agent_id;
  awaited_.erase(hello.agent_id);
  Publish(hello.agent_id);
  return opened;
}

void AgentSessions::Close(const std::string& agent_id) {
  auto it = sessions_.find(agent_id);
  if (it == sessions_.end()) return;
  agent_by_route_.erase(it->second->routing_id);
  sessions_.erase(it);
  Publish(agent_id);
}

AgentSession* AgentSessions::Find(const std::string& agent_id) {
  auto it = sessions_.find(agent_id);
  return it == sessions_.end() ? nullptr : it->second.get();
}

AgentSession* AgentSessions::FindByRoute(const std::string& routing_id) {
  auto it = agent_by_route_.find(routing_id);
  return it == agent_by_route_.end() ? nullptr : Find(it->second);
}

void AgentSessions::Seen(AgentSession& session, LoopClock::time_point now) {
  session.last_seen = now;
  // Only the last-seen time: heartbeats are the hot path, and nothing else changed.
  std::lock_guard lock(published_mutex_);
  auto it = published_.find(session.agent_id);
  if (it != published_.end()) it->second.last_seen = now;
}

bool AgentSessions::HoldUnintroduced(const std::string& routing_id, const std::string& frame,
                                     LoopClock::time_point now) {
  Unintroduced& waiting = unintroduced_[routing_id];
  const bool first = waiting.frames.empty();
  if (first) waiting.first = now;
  if (waiting.frames.size() < kMaxUnintroducedFrames &&
      waiting.bytes + frame.size() <= kMaxUnintroducedBytes) {
    waiting.bytes += frame.size();
    waiting.frames.push_back(frame);
  }
  return first;
}

std::vector<std::string> AgentSessions::TakeUnintroduced(const std::string& routing_id) {
  auto it = unintroduced_.find(routing_id);
  if (it == unintroduced_.end()) return {};
  std::vector<std::string> frames = std::move(it->second.frames);
  unintroduced_.erase(it);
  return frames;
}

void AgentSessions::Await(const std::string& agent_id, LoopClock::time_point deadline) {
  awaited_[agent_id] = deadline;
}

std::vector<std::string> AgentSessions::Lost(LoopClock::time_point now, LoopClock::duration limit) {
  std::vector<std::string> lost;
  for (const auto& [agent_id, session] : sessions_) {
    if (now - session->last_seen > limit) lost.push_back(agent_id);
  }
  std::erase_if(unintroduced_,
                [&](const auto& entry) { return now - entry.second.first > limit * 10; });
  for (auto it = awaited_.begin(); it != awaited_.end();) {
    if (now > it->second) {
      lost.push_back(it->first);
      it = awaited_.erase(it);
    } else {
      ++it;
    }
  }
  return lost;
}

void AgentSessions::Publish(const std::string& agent_id) {
  const AgentSession* session = Find(agent_id);
  std::lock_guard lock(published_mutex_);
  if (session == nullptr) {
    published_.erase(agent_id);
    return;
  }
  Published& published = published_[agent_id];
  published.view.id = agent_id;
  published.view.hostname = session->hostname;
  published.view.version = session->version;
  published.view.platforms = session->platforms;
  published.view.slots = session->slots;
  published.view.busy = static_cast<uint32_t>(session->jobs.size());
  published.view.state = session->draining ? "draining" : "online";
  published.last_seen = session->last_seen;
}

std::vector<AgentView> AgentSessions::Snapshot(LoopClock::time_point now) const {
  std::lock_guard lock(published_mutex_);
  std::vector<AgentView> views;
  views.reserve(published_.size());
  for (const auto& [agent_id, published] : published_) {
    views.push_back(published.view);
    views.back().last_seen_ms_ago =
        std::chrono::duration_cast<std::chrono::milliseconds>(now - published.last_seen).count();
  }
  return views;
}

}  // namespace manifold
