#include "agent/agent.h"

#include <spdlog/spdlog.h>

#include <cstring>
#include <zmq.hpp>

#include "common/curve_keys.h"
#include "common/curve_support.h"
#include "common/log.h"
#include "common/wire.h"

namespace manifold {

using Clock = std::chrono::steady_clock;

namespace {
constexpr size_t kMaxChunkBytes = 64 * 1024;
// Output of one job waiting to be sent (held at the coordinator's request, or printed
// faster than the loop turns) keeps its first and last MiB: as the coordinator's default
// --job-log-max-bytes.
constexpr uint64_t kMaxPendingOutputBytes = 2 << 20;
// A refused hello is said again after this long: the refusal may pass (another agent with
// this id leaves) but not within milliseconds.
constexpr std::chrono::seconds kHelloRetry{5};

// "tcp://a:7081, tcp://b:7081" -> its endpoints, without blanks.
std::vector<std::string> SplitEndpoints(const std::string& text) {
  std::vector<std::string> endpoints;
  for (size_t start = 0; start <= text.size();) {
    size_t comma = std::min(text.find(',', start), text.size());
    std::string endpoint = text.substr(start, comma - start);
    std::erase_if(endpoint, [](char c) { return c == ' ' || c == '\t'; });
    if (!endpoint.empty()) endpoints.push_back(endpoint);
    start = comma + 1;
  }
  return endpoints;
}

std::string DurationText(std::chrono::milliseconds duration) {
  return duration.count() % 1000 == 0 ? std::to_string(duration.count() / 1000) + " s"
                                      : std::to_string(duration.count()) + " ms";
}

WarmStartOptions WarmStartOptionsOf(const AgentOptions& options) {
  WarmStartOptions warm;
  warm.work_dir = options.work_dir;
  warm.registry.insecure_registries = options.insecure_registries;
  warm.metrics = options.metrics;
  return warm;
}

}  // namespace

Agent::Agent(AgentOptions options, Builder& builder)
    : options_(std::move(options)),
      builder_(builder),
      warm_start_(builder, held_caches_, WarmStartOptionsOf(options_)) {}

Agent::~Agent() {
  warm_start_.Stop();
  CancelAndJoinJobs("the agent shuts down");
}

void Agent::Withdraw(ActiveJob& job, Withdrawal why) {
  Withdrawal none = Withdrawal::kNone;
  job.withdrawn.compare_exchange_strong(none, why);
  job.cancel = true;
}

Status Agent::WithdrawnStatus(Withdrawal why) const {
  std::string what = why == Withdrawal::kDrainGraceOver
                         ? drain_cause_ + " and its grace of " +
                               DurationText(options_.drain_grace) +
                               " ran out before the job finished"
                         : "canceled the job as it exits: " + exit_reason_;
  return Status::Unavailable("agent " + options_.agent_id + " " + what +
                             "; the job is retried on another agent");
}

void Agent::CancelAndJoinJobs(const std::string& exit_reason) {
  exit_reason_ = exit_reason;
  for (auto& [id, job] : active_) Withdraw(*job, Withdrawal::kAgentExit);
  for (auto& job : superseded_) job->cancel = true;
  auto join = [](std::unique_ptr<ActiveJob>& job) {
    if (job->thread.joinable()) job->thread.join();
  };
  for (auto& [id, job] : active_) join(job);
  for (auto& job : superseded_) join(job);
  active_.clear();
  superseded_.clear();
}

Status Agent::SecureSocket() {
  if (!options_.curve_secret_key.empty()) {
    if (Status curve = RequireCurveSupport(); !curve.ok()) return curve;
    Result<std::string> public_key = CurvePublicKeyOf(options_.curve_secret_key);
    if (!public_key.ok()) return public_key.status();
    public_key_ = *public_key;
    socket_->set(zmq::sockopt::curve_serverkey, options_.coordinator_public_key);
    socket_->set(zmq::sockopt::curve_publickey, public_key_);
    socket_->set(zmq::sockopt::curve_secretkey, options_.curve_secret_key);
    spdlog::info("agent link encrypted with CURVE; this agent's key is {}",
                 CurveKeyFingerprint(public_key_));
  } else {
    spdlog::warn("plaintext agent link: for development on one host only");
  }
  std::string endpoint = "inproc://agent-monitor";
  if (zmq_socket_monitor(socket_->handle(), endpoint.c_str(),
                         ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED |
                             ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                             ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) != 0) {
    return Status::Internal(std::string("cannot monitor the agent socket: ") +
                            zmq_strerror(zmq_errno()));
  }
  monitor_ = std::make_unique<zmq::socket_t>(*context_, zmq::socket_type::pair);
  monitor_->set(zmq::sockopt::linger, 0);
  monitor_->connect(endpoint);
  return Status::Ok();
}

void Agent::ConnectAll() {
  for (const std::string& endpoint : endpoints_) socket_->connect(endpoint);
}

void Agent::DisconnectAll() {
  for (const std::string& endpoint : endpoints_) {
    try {
      socket_->disconnect(endpoint);
    } catch (const zmq::error_t&) {
      // already gone with the failed session
    }
  }
}

void Agent::Reconnect() {
  // libzmq gives up on a connection whose handshake failed; this agent tries again, so
  // it joins once an operator lists its key.
  handshake_failed_ = true;
  reconnect_at_ = Clock::now() + std::chrono::seconds(2);
}

void Agent::HandleLinkEvents() {
  while (true) {
    zmq::message_t event, address;
    if (!monitor_->recv(event, zmq::recv_flags::dontwait)) return;
    if (event.more()) (void)monitor_->recv(address, zmq::recv_flags::dontwait);
    if (event.size() < 6) continue;
    uint16_t id;
    uint32_t value;
    memcpy(&id, event.data(), sizeof(id));
    memcpy(&value, static_cast<const char*>(event.data()) + 2, sizeof(value));
    // Only the loss of the last connection that finished its handshake counts: with
    // several endpoints another may be a coordinator's that never will (paused, deposed).
    if (id == ZMQ_EVENT_DISCONNECTED && linked_.erase(address.to_string()) > 0 && linked_.empty()) {
      // Sessions live on connections: whoever answers next needs a hello, and until then
      // build output waits here rather than in a queue that may go nowhere.
      welcomed_ = false;
      rejoin_ = true;
    }
    if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
      linked_endpoint_ = address.to_string();
      linked_.insert(linked_endpoint_);
      if (rejoin_) {
        rejoin_ = false;
        spdlog::info("connected to {}; saying hello", linked_endpoint_);
        SendHello();
      }
    }
    std::string problem = LinkProblem(id, value);
    if (problem.empty()) continue;
    // ZeroMQ retries every few seconds; one line a minute per problem says enough.
    auto now = Clock::now();
    auto& logged = link_errors_logged_[problem];
    if (logged != Clock::time_point{} && now - logged < std::chrono::minutes(1)) continue;
    logged = now;
    spdlog::error("cannot connect to {}: {}", options_.coordinator, problem);
  }
}

std::string Agent::LinkProblem(uint16_t event, uint32_t value) {
  switch (event) {
    case ZMQ_EVENT_CONNECTED:
      handshake_done_ = false;
      handshake_failed_ = false;
      return "";
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
      handshake_done_ = true;
      link_errors_logged_.clear();
      return "";
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
      Reconnect();
      return "the coordinator refused this agent's key " + CurveKeyFingerprint(public_key_) +
             " (ZAP status " + std::to_string(value) +
             "): add this agent's .pub line to the coordinator's --agent-keys file and send "
             "the coordinator SIGHUP; retrying";
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
      Reconnect();
      return public_key_.empty()
                 ? "the coordinator requires CURVE: give this agent --curve-secret-key and "
                   "--coordinator-public-key; retrying"
                 : "the coordinator does not speak CURVE (or speaks it differently); check "
                   "--coordinator-public-key; retrying";
    case ZMQ_EVENT_DISCONNECTED:
      if (handshake_done_ || handshake_failed_ || public_key_.empty() || endpoints_.size() > 1) {
        return "";
      }
      return "the coordinator closed the connection during the CURVE handshake: "
             "--coordinator-public-key is probably not the coordinator's key; retrying";
    default:
      return "";
  }
}

void Agent::Send(const AgentMessage& message) {
  std::string frame = EncodeAgentMessage(message);
  // Never block the loop: while the coordinator is away ZeroMQ queues up to its
  // high-water mark; past that, log chunks are dropped, and results stay in the outbox.
  if (!socket_->send(zmq::buffer(frame), zmq::send_flags::dontwait)) {
    spdlog::debug("send queue full; dropped a {} message", MessageName(message));
  }
}

std::vector<JobRef> Agent::HeldJobs() {
  std::vector<JobRef> jobs;
  for (const auto& [id, job] : active_) jobs.push_back(job->job);
  for (const auto& [ref, entry] : outbox_) jobs.push_back(ref);
  // Ended or refused, not in the outbox yet (a hello said while reading assigns).
  std::lock_guard lock(mutex_);
  for (const JobResultMsg& result : finished_) jobs.push_back(result.job);
  return jobs;
}

void Agent::SendHello() {
  HelloMsg hello;
  hello.agent_id = options_.agent_id;
  hello.version = options_.version;
  hello.hostname = options_.hostname;
  hello.platforms = options_.platforms;
  hello.slots = options_.slots;
  hello.labels = options_.labels;
  hello.running_jobs = HeldJobs();
  Send(hello);
  last_hello_ = Clock::now();
  if (draining_) Send(DrainingMsg{});
}

void Agent::HelloRefused(const std::string& reason) {
  auto now = Clock::now();
  if (!welcomed_) {
    // Refused again and again (its id is in use by another key): worth an error, once a
    // minute, as a person has to act.
    auto& logged = refusals_logged_[reason];
    if (logged == Clock::time_point{} || now - logged >= std::chrono::minutes(1)) {
      logged = now;
      spdlog::error("the coordinator did not take this agent: {}; saying hello again every {} s",
                    reason, kHelloRetry.count());
    }
  } else {
    spdlog::info("the coordinator does not know this agent's session ({}); saying hello again",
                 reason);
  }
  welcomed_ = false;
  // At once after a coordinator restart; otherwise the loop says it again after kHelloRetry.
  if (now - last_hello_ >= kHelloRetry) SendHello();
}

void Agent::Phase(const JobRef& job, JobPhase phase) {
  std::lock_guard lock(mutex_);
  queued_.push_back(JobUpdateMsg{job, phase});
}

void Agent::Output(const JobRef& job, std::string_view text) {
  std::lock_guard lock(mutex_);
  auto it = logs_.try_emplace(job, LogBuffer{OutputBuffer(kMaxPendingOutputBytes)}).first;
  it->second.pending.Append(text);
}

void Agent::FinishJob(const JobRef& job, const Platform& platform, Result<ImageDescriptor> result,
                      const std::string& cache_pushed) {
  if (options_.metrics != nullptr) {
    const char* outcome = result.ok()                                         ? "succeeded"
                          : result.status().code() == Status::Code::kCanceled ? "canceled"
                          : result.status().retryable()                       ? "failed_retryable"
                                                                              : "failed";
    options_.metrics->CountJob(platform, outcome);
  }
  JobResultMsg message;
  message.job = job;
  if (result.ok()) {
    message.succeeded = true;
    message.image = *result;
    message.cache_pushed = cache_pushed;
    Output(job, "manifold: done: " + result->digest + "\n");
  } else {
    message.error = result.status().message();
    message.retryable = result.status().retryable();
    Output(job, "manifold: failed: " + message.error + "\n");
  }
  std::lock_guard lock(mutex_);
  finished_.push_back(std::move(message));
}

void Agent::StartJob(const AssignMsg& assign) {
  auto existing = active_.find(assign.job.job_id);
  if ((existing != active_.end() && existing->second->job.attempt >= assign.job.attempt) ||
      outbox_.count(assign.job)) {
    return;  // a duplicate assign (resent after a reconnect): the job is already ours
  }
  if (existing != active_.end()) {
    // The coordinator lost this agent for a while (a pause, a partition) and retried the
    // job here: only the newer attempt can be recorded, so the older one gives way.
    spdlog::warn(
        "{}job {}: attempt {} replaces attempt {}, which is canceled",
        LogIds{.build = assign.build_id, .job = assign.job.job_id, .attempt = assign.job.attempt},
        assign.job.job_id, assign.job.attempt, existing->second->job.attempt);
    existing->second->cancel = true;
    superseded_.push_back(std::move(existing->second));
    active_.erase(existing);
  }
  Status room = draining_ || active_.size() >= options_.slots || options_.image_store == nullptr
                    ? Status::Ok()
                    : options_.image_store->CheckRoom();
  if (draining_ || active_.size() >= options_.slots || !room.ok()) {
    // The coordinator's view was out of date, or the disk is full; failing retryably
    // puts the job back, for another agent.
    std::string why = "agent " + options_.agent_id + " " +
                      (room.ok() ? std::string("has no free slot") : room.message());
    if (!room.ok()) spdlog::warn("refused job {}: {}", assign.job.job_id, why);
    if (options_.metrics != nullptr) options_.metrics->CountJob(assign.platform, "refused");
    std::lock_guard lock(mutex_);
    finished_.push_back(JobResultMsg{assign.job, false, {}, why, true, true});
    return;
  }
  spdlog::info(
      "{}job {} attempt {}: building {} for build {}",
      LogIds{.build = assign.build_id, .job = assign.job.job_id, .attempt = assign.job.attempt},
      assign.job.job_id, assign.job.attempt, assign.platform.ToString(), assign.build_id);
  auto job = std::make_unique<ActiveJob>();
  job->job = assign.job;
  ActiveJob* raw = job.get();
  Phase(assign.job, JobPhase::kAccepted);
  job->thread = std::thread([this, raw, assign] {
    JobRunnerOptions runner_options;
    runner_options.work_dir = options_.work_dir;
    runner_options.metrics = options_.metrics;
    runner_options.registry_options.insecure_registries = options_.insecure_registries;
    runner_options.api_ca_pem = options_.api_ca_pem;
    runner_options.api_ca_file = options_.api_ca_file;
    runner_options.policy = options_.job_policy;
    runner_options.cgroups = options_.job_cgroups;
    runner_options.cache_mounts = options_.cache_mounts;
    runner_options.held_caches = &held_caches_;
    JobRunner runner(builder_, runner_options);
    Result<ImageDescriptor> result = runner.Run(assign, *this, &raw->cancel);
    if (Withdrawal why = raw->withdrawn; why != Withdrawal::kNone && !result.ok() &&
                                         result.status().code() == Status::Code::kCanceled) {
      result = WithdrawnStatus(why);
    }
    if (result.ok()) {
      spdlog::info(
          "{}job {} attempt {}: pushed {}",
          LogIds{.build = assign.build_id, .job = assign.job.job_id, .attempt = assign.job.attempt},
          assign.job.job_id, assign.job.attempt, result->digest);
    } else {
      spdlog::warn(
          "{}job {} attempt {}: {}",
          LogIds{.build = assign.build_id, .job = assign.job.job_id, .attempt = assign.job.attempt},
          assign.job.job_id, assign.job.attempt, result.status().message());
    }
    FinishJob(assign.job, assign.platform, std::move(result), runner.cache_pushed());
    raw->done = true;
  });
  active_[assign.job.job_id] = std::move(job);
}

void Agent::HandleMessage(const CoordinatorMessage& message, Status* fatal) {
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, WelcomeMsg>) {
          welcomed_ = true;
          assigns_received_ = 0;  // the coordinator numbers the assigns of each session
          logs_held_ = false;     // a new session starts with nothing held
          heartbeat_interval_ =
              std::chrono::milliseconds(std::max<uint32_t>(m.heartbeat_interval_ms, 100));
          spdlog::info("connected to {} (session {})",
                       linked_endpoint_.empty() ? options_.coordinator : linked_endpoint_,
                       m.session_id);
          if (options_.warm_start) warm_start_.Start(m.warm_start_caches, m.cache_ttl_seconds);
          // Results that waited for the coordinator go out now, not at the next resend.
          for (auto& [ref, entry] : outbox_) {
            Send(entry.result);
            entry.sent = Clock::now();
          }
        } else if constexpr (std::is_same_v<T, AssignMsg>) {
          // Held from here until its result is acknowledged (HeldJobs), refused or not.
          ++assigns_received_;
          StartJob(m);
        } else if constexpr (std::is_same_v<T, CancelMsg>) {
          auto it = active_.find(m.job.job_id);
          if (it != active_.end() && it->second->job == m.job) {
            spdlog::info("{}job {} attempt {}: canceled by the coordinator",
                         LogIds{.job = m.job.job_id, .attempt = m.job.attempt}, m.job.job_id,
                         m.job.attempt);
            it->second->cancel = true;
          }
        } else if constexpr (std::is_same_v<T, AckMsg>) {
          outbox_.erase(m.job);
        } else if constexpr (std::is_same_v<T, DrainMsg>) {
          spdlog::info("the coordinator asked this agent to drain");
          drain_requested_ = true;
        } else if constexpr (std::is_same_v<T, LogFlowMsg>) {
          if (m.hold != logs_held_) {
            spdlog::info(m.hold ? "the coordinator's database is behind: holding build output "
                                  "(each job keeps its first and last MiB) until it catches up"
                                : "sending held build output again");
          }
          logs_held_ = m.hold;
        } else if constexpr (std::is_same_v<T, RejectMsg>) {
          if (m.fatal) {
            *fatal = Status::FailedPrecondition("the coordinator refused this agent: " + m.reason);
          } else {
            HelloRefused(m.reason);
          }
        }
      },
      message);
}

void Agent::Flush() {
  std::vector<AgentMessage> updates;
  std::vector<LogChunkMsg> chunks;
  std::vector<JobResultMsg> finished;
  uint64_t cut = 0;
  {
    std::lock_guard lock(mutex_);
    updates.swap(queued_);
    finished.swap(finished_);
    for (const JobResultMsg& result : finished) {
      if (auto it = logs_.find(result.job); it != logs_.end()) it->second.finished = true;
    }
    for (auto& [job, buffer] : logs_) {
      cut += buffer.pending.TakeNewlyCut();
      // Results are never held: the output follows them later.
      if (logs_held_ || !welcomed_) continue;
      std::string text = buffer.pending.Take();
      for (size_t at = 0; at < text.size(); at += kMaxChunkBytes) {
        chunks.push_back({job, buffer.next_seq++, text.substr(at, kMaxChunkBytes)});
      }
    }
    // A finished job's output is all in `chunks` now, unless it is held.
    std::erase_if(logs_, [&](const auto& entry) {
      return entry.second.finished && !logs_held_ && welcomed_;
    });
  }
  if (options_.metrics != nullptr) {
    options_.metrics->CountLogBytesCut(cut);
    options_.metrics->SetLogsHeld(logs_held_);
  }
  for (const AgentMessage& update : updates) Send(update);
  for (const LogChunkMsg& chunk : chunks) Send(chunk);
  // Results go after their logs, so the coordinator has the whole log once a job ends;
  // while output is held (back-pressure), the rest of the log follows the result.
  for (JobResultMsg& result : finished) {
    Send(result);
    outbox_[result.job] = {std::move(result), Clock::now()};
  }
}

void Agent::ReapJobs() {
  auto reap = [](const std::unique_ptr<ActiveJob>& job) {
    if (!job->done) return false;
    job->thread.join();
    return true;
  };
  std::erase_if(active_, [&](const auto& entry) { return reap(entry.second); });
  std::erase_if(superseded_, reap);
}

Status Agent::Run(const std::atomic<bool>& stop) {
  context_ = std::make_unique<zmq::context_t>(1);
  socket_ = std::make_unique<zmq::socket_t>(*context_, zmq::socket_type::dealer);
  socket_->set(zmq::sockopt::linger, 1000);
  socket_->set(zmq::sockopt::reconnect_ivl, 100);
  // Back-off between reconnects is capped low, so a restarted coordinator hears from its
  // agents (and their running jobs) well within its wait for them.
  socket_->set(zmq::sockopt::reconnect_ivl_max, 2000);
  socket_->set(zmq::sockopt::maxmsgsize, int64_t{64} << 20);
  endpoints_ = SplitEndpoints(options_.coordinator);
  if (endpoints_.empty()) {
    return Status::InvalidArgument("no coordinator endpoint given (--coordinator)");
  }
  if (endpoints_.size() > 1) {
    // Only the leader binds: send only where a handshake completed, and drop a leader
    // that stopped answering (paused), so the next one is reached.
    socket_->set(zmq::sockopt::immediate, 1);
    socket_->set(zmq::sockopt::heartbeat_ivl, 1000);
    socket_->set(zmq::sockopt::heartbeat_timeout, 3000);
    rejoin_ = true;  // the first hello goes once a connection is up, not to nowhere
  }
  if (Status secured = SecureSocket(); !secured.ok()) return secured;
  try {
    ConnectAll();
  } catch (const zmq::error_t& e) {
    return Status::InvalidArgument("cannot connect to coordinator endpoint " +
                                   options_.coordinator + ": " + e.what());
  }
  SendHello();
  Clock::time_point last_heartbeat = Clock::now();
  Clock::time_point drain_deadline;
  Status fatal;
  while (true) {
    if ((stop || drain_requested_) && !draining_) {
      drain_cause_ = stop ? "drained (SIGTERM or SIGINT)" : "drained (the coordinator asked)";
      draining_ = true;
      drain_deadline = Clock::now() + options_.drain_grace;
      spdlog::info("draining: {} job(s) may finish within {} s", active_.size(),
                   options_.drain_grace.count() / 1000);
      Send(DrainingMsg{});
    }
    if (draining_ && Clock::now() > drain_deadline) {
      for (auto& [id, job] : active_) Withdraw(*job, Withdrawal::kDrainGraceOver);
    }
    zmq::pollitem_t items[] = {{socket_->handle(), 0, ZMQ_POLLIN, 0},
                               {monitor_->handle(), 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 2, std::chrono::milliseconds(50));
    } catch (const zmq::error_t& e) {
      // SIGTERM (drain) interrupts the poll; the loop notices `stop` at its top.
      if (e.num() == EINTR) continue;
      // The socket is ours, so this is a bug, not input: the caller logs it and exits
      // non-zero, and systemd or Kubernetes starts a fresh agent.
      fatal = Status::Internal(std::string("coordinator socket poll failed: ") + e.what());
      break;
    }
    if (items[1].revents & ZMQ_POLLIN) HandleLinkEvents();
    if (reconnect_at_ != Clock::time_point{} && Clock::now() >= reconnect_at_) {
      reconnect_at_ = {};
      DisconnectAll();
      ConnectAll();
      SendHello();
    }
    for (int i = 0; i < 100 && (items[0].revents & ZMQ_POLLIN); ++i) {
      zmq::message_t frame;
      if (!socket_->recv(frame, zmq::recv_flags::dontwait)) break;
      Result<CoordinatorMessage> message = DecodeCoordinatorMessage(frame.to_string_view());
      if (!message.ok()) {
        spdlog::warn("dropped a frame from the coordinator: {}", message.status().message());
        continue;
      }
      HandleMessage(*message, &fatal);
      if (!fatal.ok()) break;
    }
    if (!fatal.ok()) break;
    // Reaped first: a reaped job's result is then in the outbox, never left behind in
    // finished_ when the loop decides below that nothing is left to send.
    ReapJobs();
    Flush();
    if (options_.metrics != nullptr) {
      options_.metrics->SetSlotsBusy(static_cast<uint32_t>(active_.size()));
      options_.metrics->SetDraining(draining_);
    }
    Clock::time_point now = Clock::now();
    if (!welcomed_ && now - last_hello_ >= kHelloRetry) {
      SendHello();  // the first hello may have gone to a coordinator that was not up yet
    }
    if (now - last_heartbeat >= heartbeat_interval_) {
      Send(HeartbeatMsg{HeldJobs(), assigns_received_});
      last_heartbeat = now;
    }
    for (auto& [ref, entry] : outbox_) {
      if (welcomed_ && now - entry.sent > options_.result_resend) {
        Send(entry.result);
        entry.sent = now;
      }
    }
    if (draining_ && active_.empty() && outbox_.empty()) break;
    // Acknowledgements cannot arrive while the coordinator is away; give up on them
    // only after the grace period, so a drained agent still exits.
    if (draining_ && active_.empty() && now > drain_deadline) break;
  }
  CancelAndJoinJobs(fatal.ok() ? "it drained" : fatal.message());
  Flush();  // the results of the jobs it just canceled
  if (fatal.ok()) {
    Send(GoodbyeMsg{});
    spdlog::info("said goodbye to the coordinator");
    // After the goodbye: the coordinator no longer waits for this agent's heartbeats.
    if (options_.cache_mounts != nullptr) options_.cache_mounts->PushAll(drain_deadline);
  }
  zmq_socket_monitor(socket_->handle(), nullptr, 0);
  monitor_.reset();
  socket_.reset();
  context_.reset();
  return fatal;
}

}  // namespace manifold
