// FakeAgent: an agent played by a test, a ZeroMQ DEALER socket speaking the agent
// protocol to a real coordinator, for tests of what the coordinator does with hostile,
// late, flooding or vanishing agents. It heartbeats only while it waits for a message, as
// a live agent does, naming the jobs it was assigned and whose result the coordinator has
// not acknowledged. Used from one thread.
#pragma once

#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "common/messages.h"

namespace manifold::test {

class FakeAgent {
 public:
  FakeAgent(zmq::context_t& context, const std::string& endpoint);

  void SendRaw(const std::string& frame) { socket_.send(zmq::buffer(frame)); }
  void Send(const AgentMessage& message);
  // As a restarted agent's new connection does for the job it still runs.
  void Holds(const JobRef& job) { held_.insert(job); }

  void Hello(const std::string& id, const char* platform, uint32_t version = kProtocolVersion,
             std::vector<JobRef> running = {}, bool emulated = false);
  void HelloEmulated(const std::string& id, const char* platform) {
    Hello(id, platform, kProtocolVersion, {}, /*emulated=*/true);
  }
  // Reports the job built, with a made-up manifest (the merge then fails: no registry).
  void Succeed(const JobRef& job);
  // A heartbeat naming what it holds, as a live agent sends every interval.
  void Heartbeat();

  // The next message from the coordinator of type T, skipping others; nullopt on timeout.
  // Heartbeats while it waits; an agent not waiting goes silent.
  template <typename T>
  std::optional<T> Receive(std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      Heartbeat();
      std::optional<CoordinatorMessage> message = Next(std::chrono::milliseconds(100));
      if (!message) continue;
      if (auto* wanted = std::get_if<T>(&*message)) return *wanted;
    }
    return std::nullopt;
  }

 private:
  // The next message that decodes, within `wait`, noting assigns, cancels and acks.
  std::optional<CoordinatorMessage> Next(std::chrono::milliseconds wait);

  zmq::socket_t socket_;
  std::set<JobRef> held_;
  uint64_t assigns_received_ = 0;
};

}  // namespace manifold::test
