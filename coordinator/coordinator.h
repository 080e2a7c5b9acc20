// Coordinator: the agent loop. It owns the ZeroMQ ROUTER socket that agents connect to,
// the in-memory view of agents, pending and running jobs, and the merge threads.
//
// One thread (the loop) does all agent I/O and every scheduling decision; the view is
// rebuilt from the Store at Start(). Other threads (the HTTP API) hand it work through
// Enqueue(), which is thread-safe, and read a snapshot through Agents(). Anything an agent
// sends is decoded and validated before it is acted on; a frame that does not decode is
// dropped and counted, never fatal.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/messages.h"
#include "common/status.h"
#include "common/wire.h"
#include "coordinator/merger.h"
#include "coordinator/metrics.h"
#include "coordinator/store.h"
#include "coordinator/zap_handler.h"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace manifold {

struct CoordinatorOptions {
  std::string agent_endpoint = "tcp://127.0.0.1:7081";
  std::string public_url = "http://127.0.0.1:7080";  // agents fetch contexts from here
  std::chrono::milliseconds heartbeat_interval{2000};
  int missed_heartbeats = 3;  // then the agent is lost and its jobs are retried
  uint32_t max_attempts = 3;
  // Builds merged at once: a merge mostly waits on the registry, and one at a time falls
  // behind a busy farm's completions. They are taken in the order they finished, and a
  // build waits for an earlier one that pushes to one of its tags (coordinator/merge_order.h).
  int merge_workers = 4;
  // A pending job whose platform no connected agent has served for this long fails.
  std::chrono::milliseconds queue_timeout{std::chrono::minutes(15)};
  // Under --emulation fallback, how long a job waits for a native agent before an
  // emulated one may take it.
  std::chrono::milliseconds emulation_fallback_wait{std::chrono::seconds(60)};
  // An agent's layer cache counts as warm for a repository and platform it built this
  // recently; the scheduler then prefers it for jobs of the same repository.
  std::chrono::milliseconds cache_affinity_window{std::chrono::hours(6)};
  // A finished build's log is deleted this long after it ended; zero keeps logs forever.
  std::chrono::seconds log_retention{std::chrono::hours(24 * 30)};
  WireLimits limits;  // max_frame_bytes is also the socket's ZMQ_MAXMSGSIZE
  // Build output per job: a chunk larger than log_chunk_max_bytes, or output beyond a burst
  // of log_burst_bytes refilled at log_bytes_per_second, is dropped and counted, and the
  // job's log says so.
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

class Coordinator {
 public:
  Coordinator(Store& store, Metrics& metrics, CoordinatorOptions options);
  ~Coordinator();

  // Binds the agent socket, loads pending work from the store, starts the loop and the
  // merge threads. Fails if the endpoint cannot be bound.
  Status Start();
  void Stop();

  // The endpoint actually bound (resolves a port of 0 / '*').
  std::string agent_endpoint() const { return bound_endpoint_; }

  // Thread-safe: hands the jobs of a newly submitted build to the loop, with the build's
  // secrets (id -> bytes), which the coordinator keeps in memory only, until the build ends.
  void Enqueue(std::vector<QueuedJob> jobs, std::map<std::string, std::string> secrets = {});
  // Whether the agent link is encrypted (CURVE); build secrets are sent over no other.
  bool agent_link_encrypted() const { return !options_.curve_secret_key.empty(); }
  // Thread-safe: the store has canceled a build; stop the jobs agents hold.
  void BuildCanceled(std::vector<JobRecord> held_jobs);
  // Thread-safe: asks a connected agent to drain. NotFound if it is not connected.
  Status DrainAgent(const std::string& agent_id);
  // Thread-safe snapshot of connected agents.
  std::vector<AgentView> Agents() const;
  // Frames from agents that did not decode, since start.
  uint64_t malformed_frames() const { return malformed_frames_.load(); }
  // Thread-safe: reads the agent key list again (on SIGHUP); connected agents whose key is
  // no longer listed are refused and cut off. Without CURVE there is no list: a no-op.
  void ReloadAgentKeys();

 private:
  struct Session;
  struct RunningJob {
    JobRef job;
    std::string agent_id;
    Platform platform;
    std::chrono::steady_clock::time_point deadline;
    uint32_t timeout_s = 0;
    std::chrono::steady_clock::time_point assigned_at;
    std::string repository{};  // cache affinity key
  };
  struct WaitingJob {
    QueuedJob job;
    std::chrono::steady_clock::time_point since;
    std::string repository;         // cache affinity key: the first repository it pushes to
    bool native_wait_over = false;  // --emulation fallback: emulated agents may take it now
  };
  // (repository, platform) -> when the agent last built it.
  using WarmCache =
      std::map<std::pair<std::string, Platform>, std::chrono::steady_clock::time_point>;
  // Frames from a connection that has not said hello yet (typically an agent whose queue
  // was flushed into a restarted coordinator), replayed once it has.
  struct Unintroduced {
    std::vector<std::string> frames;
    size_t bytes = 0;
    std::chrono::steady_clock::time_point first;
  };
  struct PendingPhase {
    std::string agent_id;
    JobUpdateMsg update;
    std::chrono::steady_clock::time_point at;  // when it arrived
  };
  struct PendingLog {
    LogChunkMsg chunk;
    std::string agent_id;
  };
  // A job's token bucket for build output (bytes).
  struct LogBudget {
    double bytes = 0;
    std::chrono::steady_clock::time_point refilled;
    bool dropping = false;  // the job's log has been told that output is dropped
  };

  void Loop();
  void HandleFrame(const std::string& routing_id, const std::string& frame);
  void HandleHello(const std::string& routing_id, const HelloMsg& hello);
  void HandleResult(const std::string& agent_id, const JobResultMsg& result);
  // Records a result and acknowledges it; false if the store was unavailable.
  bool RecordResult(const std::string& agent_id, const JobResultMsg& result);
  // Carries out what a recorded result did (release, requeue, merge) and acknowledges it.
  void ApplyRecordedResult(const std::string& agent_id, const JobResultMsg& result,
                           const ResultOutcome& outcome);
  // Records the queued phases and results, results up to 1,000 per transaction.
  void StoreResults();
  // Carries out what a recorded phase update did: a metric, or a cancel when not current.
  void ApplyPhase(const PendingPhase& phase, bool current);
  // Stores queued logs and results now, unless the database is known to be away.
  void FlushResults();
  void Send(const std::string& routing_id, const CoordinatorMessage& message);
  void SendToAgent(const std::string& agent_id, const CoordinatorMessage& message);
  void Post(std::function<void()> task);
  void DrainInbox();
  void ScheduleJobs();
  void CheckLiveness();
  void CheckDeadlines();
  void CheckQueueTimeouts();
  void StoreLogs();
  // Queues a log chunk for the store, or drops it when it breaks the job's log limits.
  void AcceptLog(const std::string& agent_id, const LogChunkMsg& chunk);
  void AddPending(QueuedJob job);
  // Fails a job whose build has secrets the coordinator no longer holds (it restarted).
  void FailJobWithoutSecrets(const QueuedJob& job);
  // Forgets a build's secrets once it can run no job again.
  void ForgetSecrets(uint64_t build_id);
  void ReleaseJob(uint64_t job_id);
  // Retries or fails the jobs an agent was running when it went away.
  void FailJobsOfAgent(const std::string& agent_id, const std::string& error, const char* reason);
  // Ends a running attempt with a retryable failure (retried if attempts are left).
  void RetryAttempt(const JobRef& job, const std::string& agent_id, const std::string& error,
                    const char* reason);
  // Carries out what a recorded result did: requeue, cancels, merge; counts it.
  void ApplyOutcome(const ResultOutcome& outcome, const char* retry_reason);
  void UpdateGauges();
  void PruneLogs();
  // Remembers that the agent built the job's repository for its platform.
  void NoteWarmCache(const std::string& agent_id, const RunningJob& job);
  void RemoveSession(const std::string& agent_id);
  // Refuses and disconnects connected agents whose key the reloaded list no longer holds.
  void CutOffRevokedAgents();
  // Brings the agent's entry in the API's view up to date with its session (or removes
  // it): O(log agents), so a hello storm or a busy farm never copies the whole fleet.
  void PublishAgent(const std::string& agent_id);
  // Only the agent's last-seen time, for every frame it sends (heartbeats above all): its
  // session did not change, so nothing else in its entry is copied again.
  void PublishLastSeen(const std::string& agent_id, std::chrono::steady_clock::time_point at);

  void MergeLoop();
  // Pushes one build's index, retrying with back-off, and records the outcome.
  void MergeBuild(const BuildRecord& build);
  void RequestMerge(BuildRecord build);

  Store& store_;
  Metrics& metrics_;
  const CoordinatorOptions options_;
  std::chrono::steady_clock::time_point builds_counted_;
  std::unique_ptr<zmq::context_t> context_;
  std::unique_ptr<zmq::socket_t> router_;
  std::unique_ptr<ZapHandler> zap_;  // null in plaintext mode
  std::unique_ptr<zmq::socket_t> wake_receiver_;
  std::unique_ptr<zmq::socket_t> wake_sender_;  // guarded by inbox_mutex_
  std::string bound_endpoint_;
  std::thread loop_thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> malformed_frames_{0};

  // Loop-thread state.
  std::string peer_key_;  // CURVE public key of the frame being handled ("" in plaintext)
  std::map<std::string, std::unique_ptr<Session>> sessions_;  // by agent id
  std::map<std::string, std::string> agent_by_routing_id_;
  std::map<uint64_t, WaitingJob> pending_;  // by job id: oldest first
  std::map<uint64_t, RunningJob> running_;  // by job id
  // Build secrets by build id, from submit until the build can run no job again: never
  // written anywhere, so a restart loses them (FailJobWithoutSecrets).
  std::map<uint64_t, std::shared_ptr<const std::map<std::string, std::string>>> secrets_;
  // Agents that held jobs when the coordinator started; lost unless they say hello in time.
  std::map<std::string, std::chrono::steady_clock::time_point> awaited_agents_;
  std::map<std::string, Unintroduced> unintroduced_;  // by routing id
  // When an agent (any, or a native one) last served each platform.
  std::map<Platform, std::chrono::steady_clock::time_point> platform_seen_;
  std::map<Platform, std::chrono::steady_clock::time_point> native_seen_;
  std::map<std::string, WarmCache> warm_caches_;  // by agent id; kept across reconnects
  std::deque<PendingLog> pending_logs_;           // chunks the store could not take yet
  std::map<uint64_t, LogBudget> log_budgets_;     // by job id; idle ones are forgotten
  // Phase updates of this loop turn, recorded with its results (StoreResults).
  std::vector<PendingPhase> pending_phases_;
  // Results held while the store is away, recorded (and acknowledged) once it is back.
  std::deque<std::pair<std::string, JobResultMsg>> pending_results_;
  // While the store is away, held writes are tried again at most this often.
  std::chrono::steady_clock::time_point store_retry_at_;
  std::chrono::steady_clock::time_point logs_pruned_at_;
  bool schedule_needed_ = true;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();

  mutable std::mutex inbox_mutex_;
  std::vector<std::function<void()>> inbox_;

  mutable std::mutex agents_mutex_;
  struct PublishedAgent {
    AgentView view;  // last_seen_ms_ago is filled in by Agents()
    std::chrono::steady_clock::time_point last_seen;
  };
  std::map<std::string, PublishedAgent> published_agents_;  // by agent id

  std::mutex merge_mutex_;
  std::condition_variable merge_wakeup_;  // a build to merge (or stopping)
  // Where a merge thread waits out its back-off: apart, so a wakeup for a new build always
  // reaches an idle merge thread.
  std::condition_variable merge_backoff_;
  std::deque<BuildRecord> merge_queue_;         // merging builds with their jobs
  std::set<std::string> merge_tags_in_flight_;  // the tags of the merges running now
  std::vector<std::thread> merge_threads_;
  Merger merger_;  // shared by the merge threads
};

}  // namespace manifold
