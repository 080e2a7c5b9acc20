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
#include "coordinator/work_listener.h"

namespace manifold {

struct CoordinatorOptions {
  std::string agent_endpoint = "tcp://127.0.0.1:7081";
  LoopOptions loop;  // loop.limits.max_frame_bytes is also the socket's ZMQ_MAXMSGSIZE
  // Builds merged at once: a merge mostly waits on the registry, and one at a time falls
  // behind a busy farm's completions.
  int merge_workers = 4;
  // CURVE: the coordinator's Z85 secret key and the file of agent public keys allowed in.
  // Both empty: plaintext, which Start() allows only on a loopback endpoint.
  std::string curve_secret_key;
  std::string agent_keys_file;
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
  std::string leader_url() const override { return ""; }

  // Thread-safe: another coordinator's API took a build or a cancel (WorkNotice), which
  // the loop reads from the store; kAll: the loop reads its whole view back (once for any
  // number of calls until it does).
  void TakeWork(const WorkNotice& notice);

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
  std::atomic<bool> read_back_posted_{false};
  std::mutex inbox_mutex_;
  std::vector<std::function<void()>> inbox_;  // guarded by inbox_mutex_
  std::vector<uint64_t> builds_to_take_;      // TakeWork's, for one task; inbox_mutex_
};

}  // namespace manifold
