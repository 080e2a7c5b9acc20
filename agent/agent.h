// Agent: the build host's side of the agent protocol.
//
// Connects out to the coordinator (ZeroMQ DEALER; ZeroMQ reconnects by itself with
// back-off), says hello with its platforms and slots, heartbeats, runs each assigned job
// on a thread of its own through JobRunner, streams the output as log chunks (held, each
// job's bounded to its head and tail, while the coordinator asks: LogFlowMsg), and keeps
// every result in an outbox until the coordinator acknowledges it, resending it after a
// reconnect so a coordinator restart loses nothing. On stop it drains: no new jobs,
// running ones may finish within a grace period, then goodbye (and the cache mounts go
// to the registry cache in what is left of the grace). A job the agent itself
// cancels (its drain grace ran out, or it exits) is reported as a retryable failure that
// says so, before the goodbye, so that another agent runs it. A hello the coordinator
// refuses without ending this agent (its id is in use by another key) is said again every
// few seconds, with an error logged once a minute, so the agent joins once the id is free.
// Given several coordinator endpoints (coordinators sharing one database, of which only
// the leader binds its agent endpoint), it connects to all of them, sends only over a
// connection whose handshake completed (ZMQ_IMMEDIATE), and drops a connection whose peer
// stops answering ZeroMQ's heartbeats (a paused leader), so after a failover it reaches
// the new leader by itself. Whenever the connection it was welcomed on drops, it holds
// its build output and says hello again (with the jobs it holds) on the next handshake.
// Run() owns the socket and must be called from one thread; jobs report through the
// thread-safe JobEvents interface.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/builder.h"
#include "agent/held_caches.h"
#include "agent/image_store.h"
#include "agent/job_cgroup.h"
#include "agent/job_policy.h"
#include "agent/job_runner.h"
#include "agent/metrics.h"
#include "agent/output_buffer.h"
#include "agent/warm_start.h"
#include "common/messages.h"
#include "common/status.h"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace manifold {

struct AgentOptions {
  // The coordinator's agent endpoint, or several separated by commas (see above).
  std::string coordinator = "tcp://127.0.0.1:7081";
  std::string agent_id;
  std::string hostname;
  std::string version;
  std::vector<PlatformOffer> platforms;
  uint32_t slots = 1;
  std::map<std::string, std::string> labels;
  std::string work_dir;
  std::vector<std::string> insecure_registries;   // pushed to over plain HTTP
  std::string api_ca_pem, api_ca_file;            // JobRunnerOptions
  std::chrono::milliseconds drain_grace{600000};  // running jobs may finish within this
  std::chrono::milliseconds result_resend{5000};  // unacknowledged results are sent again
  AgentMetrics* metrics = nullptr;                // not owned; null: nothing is recorded
  // CURVE: this agent's Z85 secret key and the coordinator's Z85 public key. Both empty:
  // plaintext (a coordinator accepts that only on loopback).
  std::string curve_secret_key;
  std::string coordinator_public_key;
  JobPolicy job_policy;               // limits and entitlements of the jobs this agent runs
  JobCgroups* job_cgroups = nullptr;  // not owned; null: no per-job cgroups (JobRunnerOptions)
  // Not owned; null: no free-space floor. While its file system is below the floor, jobs
  // are refused, so the coordinator gives them to other agents.
  ImageStore* image_store = nullptr;
  // Not owned; null: cache mounts are not kept per repository. A drain pushes them to the
  // registry cache within what is left of the drain grace, after the goodbye.
  CacheMounts* cache_mounts = nullptr;
  // Loads the registry caches the coordinator names in its first welcome before a build
  // needs them (agent/warm_start.h).
  bool warm_start = true;
};

class Agent : public JobEvents {
 public:
  Agent(AgentOptions options, Builder& builder);
  ~Agent() override;

  // Runs until `stop` becomes true (then drains and says goodbye), the coordinator
  // refuses this agent, or polling its socket fails. Returns OK after a clean goodbye,
  // else the refusal or Internal for the poll failure (running jobs are canceled first).
  Status Run(const std::atomic<bool>& stop);

  // JobEvents, called from job threads.
  void Phase(const JobRef& job, JobPhase phase) override;
  void Output(const JobRef& job, std::string_view text) override;

 private:
  // Why this agent itself canceled a job; its result then says so and is retryable.
  enum class Withdrawal { kNone, kDrainGraceOver, kAgentExit };
  struct ActiveJob {
    JobRef job;
    std::atomic<bool> cancel{false};
    std::atomic<Withdrawal> withdrawn{Withdrawal::kNone};  // set before `cancel`
    std::atomic<bool> done{false};
    std::thread thread;
  };
  struct LogBuffer {
    OutputBuffer pending;
    uint64_t next_seq = 1;
    bool finished = false;  // its result went out; erased once its output is sent
  };

  // Sets up encryption and the socket monitor that tells why a handshake failed.
  Status SecureSocket();
  // Logs what the socket monitor reports about failed handshakes, in words an operator
  // can act on, each problem at most once a minute.
  void HandleLinkEvents();
  // The problem a monitor event reports, "" for none; tracks handshake state.
  std::string LinkProblem(uint16_t event, uint32_t value);
  // Plans a new connection after a failed handshake.
  void Reconnect();
  void ConnectAll();
  void DisconnectAll();
  void SendHello();
  void Send(const AgentMessage& message);
  void HandleMessage(const CoordinatorMessage& message, Status* fatal);
  void StartJob(const AssignMsg& assign);
  // `cache_pushed`: the registry cache ref the job pushed its cache to, if any.
  void FinishJob(const JobRef& job, const Platform& platform, Result<ImageDescriptor> result,
                 const std::string& cache_pushed = "");
  // Cancels a job on this agent's own account (`why` is not kNone).
  static void Withdraw(ActiveJob& job, Withdrawal why);
  // The retryable failure a job this agent withdrew ends with.
  Status WithdrawnStatus(Withdrawal why) const;
  // Logs a refused hello (at most once a minute per reason) and plans the next one.
  void HelloRefused(const std::string& reason);
  // Moves finished results to the outbox and sends them after their logs. Reap first:
  // a job reaped is then surely flushed, so the outbox tells whether anything is unsent.
  void Flush();
  void ReapJobs();
  // Cancels every job, superseded ones too, and waits for their threads; the results of
  // active ones say the agent exits because of `exit_reason`.
  void CancelAndJoinJobs(const std::string& exit_reason);
  std::vector<JobRef> HeldJobs();

  AgentOptions options_;
  Builder& builder_;
  HeldCaches held_caches_;  // shared by the jobs' runners and the warm start
  WarmStart warm_start_;
  std::unique_ptr<zmq::context_t> context_;
  std::unique_ptr<zmq::socket_t> socket_;
  std::unique_ptr<zmq::socket_t> monitor_;
  std::string public_key_;              // this agent's CURVE key, "" in plaintext
  bool handshake_done_ = false;         // on the current connection
  bool handshake_failed_ = false;       // on the current connection
  std::vector<std::string> endpoints_;  // options_.coordinator, split
  // The connection this agent was welcomed on dropped: hello again on the next handshake.
  bool rejoin_ = false;
  std::string linked_endpoint_;   // of the last handshake, for the log
  std::set<std::string> linked_;  // endpoints whose connection finished its handshake
  std::chrono::steady_clock::time_point reconnect_at_;  // zero: no reconnect planned
  std::map<std::string, std::chrono::steady_clock::time_point> link_errors_logged_;
  std::chrono::milliseconds heartbeat_interval_{2000};
  bool welcomed_ = false;
  // Assigns read since the last welcome, told in every heartbeat: the coordinator counts
  // a job lost only once this shows its assign arrived and the heartbeat lacks it.
  uint64_t assigns_received_ = 0;
  std::chrono::steady_clock::time_point last_hello_;
  std::map<std::string, std::chrono::steady_clock::time_point> refusals_logged_;
  bool drain_requested_ = false;  // by the coordinator (an autoscaler's scale-in)
  // The coordinator asked to hold log chunks (LogFlowMsg) until it says to resume, or a
  // new session starts; results, phases and heartbeats still go out.
  bool logs_held_ = false;
  bool draining_ = false;
  // Why it drains and why it exits, for the results of jobs it withdraws; written by the
  // loop thread before any job is withdrawn, read by job threads after.
  std::string drain_cause_;
  std::string exit_reason_;

  // Loop-thread state.
  std::map<uint64_t, std::unique_ptr<ActiveJob>> active_;  // by job id
  // Older attempts of jobs in active_, canceled when the coordinator assigned a newer one
  // (it retried the job while this agent was out of reach); joined once they end.
  std::vector<std::unique_ptr<ActiveJob>> superseded_;

  // Shared with job threads.
  std::mutex mutex_;
  std::vector<AgentMessage> queued_;  // phase updates, in order
  std::map<JobRef, LogBuffer> logs_;
  std::vector<JobResultMsg> finished_;  // to move into the outbox after their logs
  struct Unacknowledged {
    JobResultMsg result;
    std::chrono::steady_clock::time_point sent;
  };
  std::map<JobRef, Unacknowledged> outbox_;  // loop-thread only
};

}  // namespace manifold
