// SimFleet: many simulated agents in one process, for the fleet simulator and its smoke
// test. Each agent has its own ZeroMQ DEALER socket and identity, says hello with its
// platform and slots, heartbeats, and answers assignments the way manifold-agent does
// (accepted, building, pushing, then a JobResult) in the real Cap'n Proto protocol
// (common/wire.h). Builds take `build_time` (0 allowed) and report the descriptor of an
// image that was pushed to the registry once up front, so the coordinator's merge
// verifies and pushes a real index.
//
// One DEALER socket per agent means one TCP connection and one mailbox descriptor each:
// 10,000 agents need about 20,000 file descriptors here and 10,000 in the coordinator, so
// RaiseFileLimit() lifts RLIMIT_NOFILE (the coordinator started afterwards inherits it).
// Agents are spread over `threads` threads, each polling its own sockets. Where one
// process may not open enough files, `processes` > 1 runs the agents in that many child
// processes (this program again, with the hidden subcommand that calls RunChild), each
// with its share of the agents and its own descriptor limit; they report welcomes and
// acknowledgements back over a pipe, so the counters and TakeAcks below work alike.
//
// Thread-safety: Start, WaitWelcomed and Stop are called from one thread; the counters and
// TakeAcks may be read from any thread while the fleet runs.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/messages.h"
#include "common/platform.h"
#include "common/status.h"

namespace zmq {
class context_t;
}

namespace manifold::bench {

using Clock = std::chrono::steady_clock;

struct SimFleetOptions {
  std::string endpoint;  // the coordinator's agent endpoint, tcp://127.0.0.1:PORT
  int agents = 20;
  // Agent i serves platforms[i % platforms.size()] natively.
  std::vector<Platform> platforms;
  uint32_t slots = 1;
  std::string id_prefix = "sim";
  // 0: heartbeat at the interval the coordinator's welcome asks for.
  std::chrono::milliseconds heartbeat_interval{0};
  std::chrono::milliseconds build_time{0};
  // Build output each job sends (one chunk, before its result); 0: none.
  uint32_t log_bytes = 0;
  // The image each platform's builds report; pushed to every repository builds name.
  std::map<Platform, ImageDescriptor> images;
  int threads = 2;                 // per process
  int connects_per_second = 2000;  // ramp, so the coordinator's listen backlog keeps up
  // Child processes holding the agents; 1: this process's threads hold them.
  int processes = 1;
  // What runs a child: this program and the arguments before RunChild's spec.
  std::vector<std::string> child_command;
  int first_agent = 0;  // number of the first agent (ids and platforms); set for children
};

// A job result the coordinator acknowledged, i.e. recorded in its database.
struct RecordedJob {
  uint64_t job_id = 0;
  uint64_t build_id = 0;
  Clock::time_point assigned_at;  // when the agent received the assignment
  Clock::time_point at;           // when it received the acknowledgement
};

// Raises this process's open-file limit to `wanted` (as far as the hard limit, or beyond
// it when running as root). Returns the limit now in force.
uint64_t RaiseFileLimit(uint64_t wanted);

class SimFleet {
 public:
  explicit SimFleet(SimFleetOptions options);
  ~SimFleet();  // Stop()
  SimFleet(const SimFleet&) = delete;
  SimFleet& operator=(const SimFleet&) = delete;

  // Creates the sockets and starts the threads, which connect the agents and say hello.
  Status Start();
  // Waits until every agent was welcomed; an error naming how many were not.
  Status WaitWelcomed(std::chrono::seconds timeout);
  // Every agent says goodbye and disconnects; threads are joined.
  void Stop();

  uint64_t welcomed() const { return welcomed_.load(); }
  uint64_t assigned() const { return assigned_.load(); }
  uint64_t acked() const { return acked_.load(); }
  uint64_t refused() const { return refused_.load(); }  // fatal rejects
  uint64_t malformed() const { return malformed_.load(); }
  // Results acknowledged since the last call.
  std::vector<RecordedJob> TakeAcks();

  // A child process's whole life (options in the JSON that Start passes it): runs its
  // agents and reports on stdout until its stdin closes, then stops them. Returns the
  // exit status.
  static int RunChild(const std::string& spec);

 private:
  struct Agent;
  struct Child;
  Status StartChildren();
  // Reads one child's reports until it closes its stdout.
  void ReadChild(Child& child);
  void Run(int thread_index);
  void Handle(Agent& agent, std::string_view frame, Clock::time_point now);
  void SendHello(Agent& agent);
  void Finish(Agent& agent, uint64_t job_id);

  const SimFleetOptions options_;
  std::unique_ptr<zmq::context_t> context_;
  std::vector<std::unique_ptr<Agent>> agents_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> welcomed_{0}, assigned_{0}, acked_{0}, refused_{0}, malformed_{0};
  std::mutex acks_mutex_;
  std::vector<RecordedJob> acks_;
  std::vector<std::unique_ptr<Child>> children_;
};

}  // namespace manifold::bench
