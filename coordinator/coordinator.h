// Coordinator: the agent loop's thread and what it owns: the agent socket, the loop's
// decisions (AgentLoop) and the merge queue.
//
// One thread does all agent I/O and every scheduling decision: it polls the socket, hands
// each frame to the AgentLoop, runs the API's requests posted to its inbox, and ticks the
// loop between frames. The merge queue's threads push indexes. The HTTP API sees only the
// BuildQueue interface, whose methods are thread-safe and never wait for the loop.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/wire.h"
#include "coordinator/agent_loop.h"
#include "coordinator/agent_socket.h"
#include "coordinator/build_queue.h"
#include "coordinator/loop_store.h"
#include "coordinator/merge_queue.h"
#include "coordinator/merger.h"
#include "coordinator/metrics.h"

namespace manifold {

struct CoordinatorOptions {
  std::string agent_endpoint = "tcp://127.0.0.1:7081";
  std::string public_url = "http://127.0.0.1:7080";  // agents fetch contexts from here
  std::chrono::milliseconds heartbeat_interval{2000};
  int missed_heartbeats = 3;  // then the agent is lost and its jobs are retried
  uint32_t max_attempts = 3;
  // Builds merged at once: a merge mostly waits on the registry, and one at a time falls
  // behind a busy farm's completions.
  int merge_workers = 4;
  std::chrono::milliseconds queue_timeout{std::chrono::minutes(15)};
  std::chrono::milliseconds emulation_fallback_wait{std::chrono::seconds(60)};
  std::chrono::milliseconds cache_affinity_window{std::chrono::hours(6)};
  std::chrono::seconds log_retention{std::chrono::hours(24 * 30)};
  WireLimits limits;  // max_frame_bytes is also the socket's ZMQ_MAXMSGSIZE
  // Build output per job (coordinator/log_budget.h).
  uint64_t log_bytes_per_second = 1u << 20;
  uint64_t log_burst_bytes = 16u << 20;
  uint64_t log_chunk_max_bytes = 1u << 20;
  // CURVE: the coordinator's Z85 secret key and the file of agent public keys allowed in.
  // Both empty: plaintext, which Start() allows only on a loopback endpoint.
  std::string curve_secret_key;
  std::string agent_keys_file;
  // Appended to context URLs in assignments, so agents may fetch contexts from an API that
  // requires tokens (coordinator/api_auth.h); empty: plain URLs.
  std::function<std::string(const std::string& digest)> context_url_query;
  // Registries the index is pushed to over plain HTTP.
  std::vector<std::string> insecure_registries;
};

class Coordinator final : public BuildQueue {
 public:
  Coordinator(LoopStore& store, Metrics& metrics, CoordinatorOptions options);
  ~Coordinator() override;

  // Binds the agent socket, loads pending work from the store, starts the loop and the
  // merge threads. Fails if the endpoint cannot be bound or the store cannot be read.
  Status Start();
  void Stop();

  // The endpoint actually bound (resolves a port of 0 / '*').
  std::string agent_endpoint() const { return socket_.endpoint(); }
  // Frames from agents that did not decode, since start.
  uint64_t malformed_frames() const { return loop_.malformed_frames(); }
  // Thread-safe: reads the agent key list again (on SIGHUP); connected agents whose key is
  // no longer listed are refused and cut off. Without CURVE there is no list: a no-op.
  void ReloadAgentKeys();

  // BuildQueue.
  void Enqueue(std::vector<QueuedJob> jobs, std::map<std::string, std::string> secrets) override;
  bool agent_link_encrypted() const override { return !options_.curve_secret_key.empty(); }
  void BuildCanceled(std::vector<JobRecord> held_jobs) override;
  Status DrainAgent(const std::string& agent_id) override;
  std::vector<AgentView> Agents() const override;

 private:
  void Run();
  // Hands a task to the loop thread.
  void Post(std::function<void()> task);

  Metrics& metrics_;
  const CoordinatorOptions options_;
  Merger merger_;  // shared by the merge threads
  MergeQueue merges_;
  AgentSocket socket_;
  AgentLoop loop_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::mutex inbox_mutex_;
  std::vector<std::function<void()>> inbox_;  // guarded by inbox_mutex_
};

}  // namespace manifold
