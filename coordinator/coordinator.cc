#include "coordinator/coordinator.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <random>
#include <zmq.hpp>

#include "common/curve_support.h"
#include "common/log.h"
#include "common/reference.h"
#include "coordinator/listen_address.h"
#include "coordinator/merge_order.h"
#include "coordinator/scheduler.h"

namespace manifold {

using Clock = std::chrono::steady_clock;

struct Coordinator::Session {
  std::string agent_id;
  std::string routing_id;
  std::string public_key;  // CURVE key it connected with; "" in plaintext mode
  std::string hostname;
  std::string version;
  std::vector<PlatformOffer> platforms;
  uint32_t slots = 1;
  std::set<uint64_t> jobs;  // job ids running here
  Clock::time_point last_seen;
  bool draining = false;
};

namespace {

std::string RandomSessionId() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buffer[17];
  snprintf(buffer, sizeof(buffer), "%016llx", static_cast<unsigned long long>(rng()));
  return buffer;
}

std::vector<std::string> Repositories(const BuildSpec& spec) {
  std::vector<std::string> names;
  for (const std::string& tag : spec.tags) {
    Result<Reference> ref = ParseReference(tag);
    if (!ref.ok()) continue;  // validated at submit; a bad stored tag fails at merge
    if (std::find(names.begin(), names.end(), ref->Name()) == names.end()) {
      names.push_back(ref->Name());
    }
  }
  return names;
}

}  // namespace

Coordinator::Coordinator(Store& store, Metrics& metrics, CoordinatorOptions options)
    : store_(store), metrics_(metrics), options_(std::move(options)), merger_([this] {
        RegistryOptions registry;
        registry.insecure_registries = options_.insecure_registries;
        registry.on_request = [this](RegistryOperation operation, long http_status) {
          metrics_.CountRegistryRequest(operation, http_status);
        };
        return registry;
      }()) {}

Coordinator::~Coordinator() { Stop(); }

Status Coordinator::Start() {
  context_ = std::make_unique<zmq::context_t>(1);
  router_ = std::make_unique<zmq::socket_t>(*context_, zmq::socket_type::router);
  router_->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(options_.limits.max_frame_bytes));
  router_->set(zmq::sockopt::linger, 0);
  if (!options_.curve_secret_key.empty()) {
    if (Status curve = RequireCurveSupport(); !curve.ok()) return curve;
    zap_ = std::make_unique<ZapHandler>(options_.agent_keys_file);
    if (Status started = zap_->Start(*context_); !started.ok()) return started;
    router_->set(zmq::sockopt::curve_server, true);
    router_->set(zmq::sockopt::curve_secretkey, options_.curve_secret_key);
    router_->set(zmq::sockopt::zap_domain, "manifold");
  } else if (!IsLoopbackEndpoint(options_.agent_endpoint)) {
    return Status::FailedPrecondition(
        "refusing plaintext agent connections on " + options_.agent_endpoint +
        ": give agents CURVE keys (--curve-secret-key and --agent-keys; make keys with "
        "`manifold keygen`), or listen on 127.0.0.1 for development");
  } else {
    spdlog::warn(
        "*** PLAINTEXT AGENT LINK on {}: no encryption, any local process may act as an "
        "agent. For development only; set --curve-secret-key and --agent-keys. ***",
        options_.agent_endpoint);
  }
  try {
    router_->bind(options_.agent_endpoint);
  } catch (const zmq::error_t& e) {
    return Status::FailedPrecondition("cannot listen for agents on " + options_.agent_endpoint +
                                      ": " + e.what());
  }
  bound_endpoint_ = router_->get(zmq::sockopt::last_endpoint);
  wake_receiver_ = std::make_unique<zmq::socket_t>(*context_, zmq::socket_type::pair);
  wake_sender_ = std::make_unique<zmq::socket_t>(*context_, zmq::socket_type::pair);
  std::string wake_endpoint = "inproc://wake-" + RandomSessionId();
  wake_receiver_->bind(wake_endpoint);
  wake_sender_->connect(wake_endpoint);

  Result<std::vector<QueuedJob>> pending = store_.PendingJobs();
  if (!pending.ok()) return pending.status();
  for (QueuedJob& job : *pending) AddPending(std::move(job));
  Result<std::vector<JobRecord>> active = store_.ActiveJobs();
  if (!active.ok()) return active.status();
  // Agents reconnect with back-off (at most 2 s apart) and may have queued work to send
  // first: they get the liveness window plus that much before their jobs are retried.
  Clock::time_point hello_deadline = Clock::now() +
                                     options_.heartbeat_interval * options_.missed_heartbeats +
                                     std::chrono::seconds(10);
  auto system_now = std::chrono::system_clock::now().time_since_epoch();
  for (const JobRecord& job : *active) {
    // The job's deadline is stored as wall time; the loop keeps time on a steady clock.
    auto left = std::chrono::milliseconds(job.deadline_unix_ms) -
                std::chrono::duration_cast<std::chrono::milliseconds>(system_now);
    running_[job.id] = {{job.id, job.attempt}, job.agent_id, job.platform, Clock::now() + left, 0,
                        Clock::now()};
    awaited_agents_[job.agent_id] = hello_deadline;
  }
  Result<std::vector<BuildRecord>> merging = store_.BuildsToMerge();
  if (!merging.ok()) return merging.status();
  spdlog::info("agent socket on {}; {} pending, {} running jobs, {} builds to merge",
               bound_endpoint_, pending_.size(), running_.size(), merging->size());

  for (int i = 0; i < std::max(1, options_.merge_workers); ++i) {
    merge_threads_.emplace_back([this] { MergeLoop(); });
  }
  for (BuildRecord& build : *merging) RequestMerge(std::move(build));
  loop_thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void Coordinator::Stop() {
  if (stopping_.exchange(true)) return;
  {
    std::lock_guard lock(inbox_mutex_);
    if (wake_sender_) wake_sender_->send(zmq::str_buffer("stop"), zmq::send_flags::dontwait);
  }
  {
    std::lock_guard lock(merge_mutex_);  // no merge thread is between its check and its wait
  }
  merge_wakeup_.notify_all();
  merge_backoff_.notify_all();
  if (loop_thread_.joinable()) loop_thread_.join();
  for (std::thread& merge_thread : merge_threads_) merge_thread.join();
  merge_threads_.clear();
  wake_sender_.reset();
  wake_receiver_.reset();
  router_.reset();
  // Every socket must be closed before the context, or its destructor waits for ever: the
  // ZAP handler's too (a CURVE coordinator once hung on SIGTERM until it was killed).
  zap_.reset();
  context_.reset();
}

void Coordinator::Post(std::function<void()> task) {
  std::lock_guard lock(inbox_mutex_);
  inbox_.push_back(std::move(task));
  if (wake_sender_) wake_sender_->send(zmq::str_buffer("w"), zmq::send_flags::dontwait);
}

void Coordinator::Enqueue(std::vector<QueuedJob> jobs, std::map<std::string, std::string> secrets) {
  auto held = std::make_shared<const std::map<std::string, std::string>>(std::move(secrets));
  Post([this, jobs = std::move(jobs), held = std::move(held)]() mutable {
    if (!held->empty() && !jobs.empty()) secrets_[jobs.front().build_id] = std::move(held);
    for (QueuedJob& job : jobs) AddPending(std::move(job));
  });
}

void Coordinator::BuildCanceled(std::vector<JobRecord> jobs) {
  metrics_.CountBuild("canceled");
  Post([this, jobs = std::move(jobs)] {
    for (const JobRecord& job : jobs) {
      ForgetSecrets(job.build_id);
      pending_.erase(job.id);
      if (!running_.count(job.id)) continue;
      spdlog::info(
          "{}job {} attempt {}: canceling on agent {}",
          LogIds{
              .build = job.build_id, .job = job.id, .attempt = job.attempt, .agent = job.agent_id},
          job.id, job.attempt, job.agent_id);
      SendToAgent(job.agent_id, CancelMsg{{job.id, job.attempt}});
      ReleaseJob(job.id);
    }
  });
}

Status Coordinator::DrainAgent(const std::string& agent_id) {
  std::vector<AgentView> agents = Agents();
  if (std::none_of(agents.begin(), agents.end(),
                   [&](const AgentView& a) { return a.id == agent_id; })) {
    return Status::NotFound("no agent " + agent_id + " is connected");
  }
  Post([this, agent_id] {
    auto it = sessions_.find(agent_id);
    if (it == sessions_.end()) return;
    spdlog::info("draining agent {} on request", agent_id);
    it->second->draining = true;
    store_.SetAgentState(agent_id, "draining");
    PublishAgent(agent_id);  // before the agent hears it, so the API never shows it otherwise
    Send(it->second->routing_id, DrainMsg{});
  });
  return Status::Ok();
}

void Coordinator::AddPending(QueuedJob job) {
  if (!job.spec->secret_ids.empty() && !secrets_.count(job.build_id)) {
    return FailJobWithoutSecrets(job);
  }
  uint64_t id = job.job_id;
  std::vector<std::string> repositories = Repositories(*job.spec);
  std::string repository = repositories.empty() ? "" : repositories.front();
  pending_[id] = {std::move(job), Clock::now(), std::move(repository)};
  schedule_needed_ = true;
}

void Coordinator::FailJobWithoutSecrets(const QueuedJob& job) {
  const std::string error =
      job.platform.ToString() +
      ": the build's secrets (--secret) are kept only in the coordinator's memory, and the "
      "coordinator restarted before this job could run; submit the build again";
  Result<ResultOutcome> outcome =
      store_.EndJob(job.job_id, std::nullopt, "failed", "secrets lost in a restart", error);
  if (!outcome.ok()) {
    spdlog::error("{}cannot fail job {}: {}", LogIds{.build = job.build_id, .job = job.job_id},
                  job.job_id, outcome.status().message());
    return;
  }
  spdlog::warn("{}job {}: {}", LogIds{.build = job.build_id, .job = job.job_id}, job.job_id, error);
  metrics_.CountJob(job.platform, "failed");
  ApplyOutcome(*outcome, "secrets_lost");
}

void Coordinator::ForgetSecrets(uint64_t build_id) { secrets_.erase(build_id); }

void Coordinator::NoteWarmCache(const std::string& agent_id, const RunningJob& job) {
  if (job.repository.empty()) return;
  WarmCache& warm = warm_caches_[agent_id];
  Clock::time_point now = Clock::now();
  warm[{job.repository, job.platform}] = now;
  std::erase_if(
      warm, [&](const auto& entry) { return now - entry.second > options_.cache_affinity_window; });
}

std::vector<AgentView> Coordinator::Agents() const {
  Clock::time_point now = Clock::now();
  std::lock_guard lock(agents_mutex_);
  std::vector<AgentView> views;
  views.reserve(published_agents_.size());
  for (const auto& [agent_id, published] : published_agents_) {
    views.push_back(published.view);
    views.back().last_seen_ms_ago =
        std::chrono::duration_cast<std::chrono::milliseconds>(now - published.last_seen).count();
  }
  return views;
}

void Coordinator::Loop() {
  Clock::time_point last_liveness = Clock::now();
  while (!stopping_) {
    zmq::pollitem_t items[] = {{router_->handle(), 0, ZMQ_POLLIN, 0},
                               {wake_receiver_->handle(), 0, ZMQ_POLLIN, 0},
                               {zap_ ? zap_->socket().handle() : nullptr, 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, zap_ ? 3 : 2, std::chrono::milliseconds(200));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      spdlog::critical("agent socket poll failed: {}", e.what());
      std::abort();  // the socket is ours; a failure here is a bug, not input
    }
    if (zap_ && (items[2].revents & ZMQ_POLLIN)) zap_->HandleRequests();
    if (items[1].revents & ZMQ_POLLIN) {
      zmq::message_t ignored;
      while (wake_receiver_->recv(ignored, zmq::recv_flags::dontwait)) {
      }
    }
    // Bounded batch, so a flood from agents cannot starve scheduling.
    for (int i = 0; i < 1000 && (items[0].revents & ZMQ_POLLIN); ++i) {
      zmq::message_t routing_id;
      if (!router_->recv(routing_id, zmq::recv_flags::dontwait)) break;
      std::vector<zmq::message_t> parts;
      while (router_->get(zmq::sockopt::rcvmore)) {
        zmq::message_t part;
        if (!router_->recv(part, zmq::recv_flags::dontwait)) break;
        parts.push_back(std::move(part));
      }
      if (parts.size() != 1) {
        ++malformed_frames_;
        metrics_.CountMalformedFrame();
        spdlog::warn("dropped a message of {} frames from an agent (expected 1)", parts.size());
        continue;
      }
      if (zap_) {
        // The ZAP handler made the key the connection's User-Id. A connection whose key
        // was removed from the list since its handshake is heard no more.
        const char* key = nullptr;
        try {
          key = parts[0].gets("User-Id");
        } catch (const zmq::error_t&) {
        }
        peer_key_ = key != nullptr ? key : "";
        if (!zap_->Allowed(peer_key_)) continue;
      }
      HandleFrame(routing_id.to_string(), parts[0].to_string());
    }
    DrainInbox();
    if (Clock::now() >= store_retry_at_) {
      StoreLogs();
      StoreResults();
    }
    if (schedule_needed_) ScheduleJobs();
    if (Clock::now() - last_liveness > options_.heartbeat_interval / 4) {
      CheckLiveness();
      CheckDeadlines();
      CheckQueueTimeouts();
      UpdateGauges();
      PruneLogs();
      last_liveness = Clock::now();
    }
  }
}

void Coordinator::Send(const std::string& routing_id, const CoordinatorMessage& message) {
  std::string frame = EncodeCoordinatorMessage(message);
  router_->send(zmq::buffer(routing_id), zmq::send_flags::sndmore);
  router_->send(zmq::buffer(frame), zmq::send_flags::dontwait);
}

void Coordinator::SendToAgent(const std::string& agent_id, const CoordinatorMessage& message) {
  auto it = sessions_.find(agent_id);
  if (it != sessions_.end()) Send(it->second->routing_id, message);
}

void Coordinator::HandleFrame(const std::string& routing_id, const std::string& frame) {
  Result<AgentMessage> decoded = DecodeAgentMessage(frame, options_.limits);
  if (!decoded.ok()) {
    ++malformed_frames_;
    metrics_.CountMalformedFrame();
    spdlog::warn("dropped a frame from an agent: {}", decoded.status().message());
    return;
  }
  if (auto* hello = std::get_if<HelloMsg>(&*decoded)) {
    HandleHello(routing_id, *hello);
    return;
  }
  auto known = agent_by_routing_id_.find(routing_id);
  if (known == agent_by_routing_id_.end()) {
    // Typically the coordinator restarted and the agent's queued messages arrived before
    // it noticed: keep them (bounded) for after its hello, and ask it to say hello.
    Unintroduced& waiting = unintroduced_[routing_id];
    if (waiting.frames.empty()) {
      waiting.first = Clock::now();
      Send(routing_id, RejectMsg{"unknown agent session; say hello again", false});
    }
    if (waiting.frames.size() < 10000 && waiting.bytes + frame.size() <= (64u << 20)) {
      waiting.bytes += frame.size();
      waiting.frames.push_back(frame);
    }
    return;
  }
  Session& session = *sessions_.at(known->second);
  session.last_seen = Clock::now();
  PublishLastSeen(session.agent_id, session.last_seen);
  std::visit(
      [&](const auto& message) {
        using T = std::decay_t<decltype(message)>;
        if constexpr (std::is_same_v<T, HeartbeatMsg>) {
          // Liveness is all a heartbeat carries today; last_seen is updated above.
        } else if constexpr (std::is_same_v<T, JobUpdateMsg>) {
          // Recorded after this turn's frames, with the other phases and results that came
          // with it (StoreResults): one transaction for all.
          if (pending_phases_.size() < 100000) {
            pending_phases_.push_back({session.agent_id, message, Clock::now()});
          }
        } else if constexpr (std::is_same_v<T, LogChunkMsg>) {
          AcceptLog(session.agent_id, message);
        } else if constexpr (std::is_same_v<T, JobResultMsg>) {
          HandleResult(session.agent_id, message);
        } else if constexpr (std::is_same_v<T, DrainingMsg>) {
          session.draining = true;
          store_.SetAgentState(session.agent_id, "draining");
          PublishAgent(session.agent_id);
        } else if constexpr (std::is_same_v<T, GoodbyeMsg>) {
          spdlog::info("agent {} said goodbye", session.agent_id);
          FlushResults();
          std::string agent_id = session.agent_id;
          FailJobsOfAgent(agent_id, "agent " + agent_id + " left while building", "agent_left");
          store_.SetAgentState(agent_id, "lost");
          RemoveSession(agent_id);
        }
      },
      *decoded);
}

void Coordinator::HandleHello(const std::string& routing_id, const HelloMsg& hello) {
  // Results that came before this hello are recorded first: otherwise a job this agent
  // finished and no longer holds would look lost with its previous process.
  FlushResults();
  auto reject = [&](const std::string& reason) {
    spdlog::warn("refused agent {}: {}", hello.agent_id, reason);
    Send(routing_id, RejectMsg{reason, true});
  };
  if (hello.protocol_version != kProtocolVersion) {
    return reject("agent protocol version " + std::to_string(hello.protocol_version) +
                  " is not supported (coordinator speaks " + std::to_string(kProtocolVersion) +
                  "); upgrade the agent or the coordinator so they match");
  }
  if (hello.agent_id.empty() || hello.agent_id.size() > 253) {
    return reject("agent id must be 1 to 253 characters; set --id");
  }
  if (hello.platforms.empty()) return reject("agent offers no platform; set --platform");
  if (hello.slots == 0 || hello.slots > 1024) return reject("agent slots must be 1 to 1024");
  auto existing = sessions_.find(hello.agent_id);
  if (existing != sessions_.end() && existing->second->public_key != peer_key_) {
    // Results are fenced on the agent id: one key must not take over another's session.
    return reject("agent id " + hello.agent_id + " is connected with another key (" +
                  CurveKeyFingerprint(existing->second->public_key) +
                  "); give each agent its own --id");
  }
  Status stored = store_.UpsertAgent(hello);
  if (!stored.ok()) {
    // Not fatal for the agent: it says hello again when its session stays unknown.
    spdlog::error("cannot register agent {}: {}", hello.agent_id, stored.message());
    return;
  }

  if (existing != sessions_.end()) agent_by_routing_id_.erase(existing->second->routing_id);
  auto session = std::make_unique<Session>();
  session->agent_id = hello.agent_id;
  session->routing_id = routing_id;
  session->public_key = peer_key_;
  session->hostname = hello.hostname;
  session->version = hello.version;
  session->platforms = hello.platforms;
  session->slots = hello.slots;
  session->last_seen = Clock::now();
  sessions_[hello.agent_id] = std::move(session);
  agent_by_routing_id_[routing_id] = hello.agent_id;
  awaited_agents_.erase(hello.agent_id);

  // Jobs the store gave this agent that it no longer holds were lost with its previous
  // process; the ones it still holds keep running.
  std::set<JobRef> held(hello.running_jobs.begin(), hello.running_jobs.end());
  std::vector<JobRef> lost;
  for (const auto& [job_id, running] : running_) {
    if (running.agent_id != hello.agent_id) continue;
    if (held.count(running.job)) {
      sessions_[hello.agent_id]->jobs.insert(job_id);
    } else {
      lost.push_back(running.job);
    }
  }
  for (const JobRef& job : lost) {
    RetryAttempt(job, hello.agent_id, "agent " + hello.agent_id + " restarted during the job",
                 "agent_restarted");
  }
  std::string offers;
  for (const PlatformOffer& offer : hello.platforms) {
    offers += (offers.empty() ? "" : ", ") + offer.platform.ToString() +
              (offer.emulated ? " (emulated)" : "");
  }
  spdlog::info("agent {} ({}) online: {}, {} slot(s){}", hello.agent_id, hello.hostname, offers,
               hello.slots, zap_ ? ", key " + zap_->Describe(peer_key_) : "");
  Send(routing_id,
       WelcomeMsg{RandomSessionId(), static_cast<uint32_t>(options_.heartbeat_interval.count())});
  schedule_needed_ = true;
  PublishAgent(hello.agent_id);
  auto waiting = unintroduced_.find(routing_id);
  if (waiting != unintroduced_.end()) {
    std::vector<std::string> frames = std::move(waiting->second.frames);
    unintroduced_.erase(waiting);
    spdlog::info("agent {}: replaying {} message(s) sent before its hello", hello.agent_id,
                 frames.size());
    for (const std::string& frame : frames) HandleFrame(routing_id, frame);
  }
}

void Coordinator::HandleResult(const std::string& agent_id, const JobResultMsg& result) {
  // Recorded after this turn's frames, together with the other results that came with it
  // (StoreResults): one commit for all. A job's output is stored before its end, and
  // results in the order they came.
  if (!pending_logs_.empty() || Clock::now() < store_retry_at_) {
    spdlog::warn("{}result of job {} attempt {} held until the database answers",
                 LogIds{.job = result.job.job_id, .attempt = result.job.attempt, .agent = agent_id},
                 result.job.job_id, result.job.attempt);
  }
  if (pending_results_.size() < 100000) pending_results_.emplace_back(agent_id, result);
}

void Coordinator::FlushResults() {
  if (Clock::now() < store_retry_at_) return;  // the database is away; they stay queued
  StoreLogs();
  StoreResults();
}

void Coordinator::ApplyPhase(const PendingPhase& phase, bool current) {
  const JobRef& job = phase.update.job;
  auto running = running_.find(job.job_id);
  if (current && phase.update.phase == JobPhase::kAccepted && running != running_.end()) {
    metrics_.ObserveDispatchLatency(
        running->second.platform,
        std::chrono::duration<double>(phase.at - running->second.assigned_at).count());
  }
  if (!current) {
    metrics_.CountDroppedMessage("not_assigned");
    spdlog::warn("{}agent {} reported job {} attempt {} which is not its job; canceling it",
                 LogIds{.job = job.job_id, .attempt = job.attempt, .agent = phase.agent_id},
                 phase.agent_id, job.job_id, job.attempt);
    SendToAgent(phase.agent_id, CancelMsg{job});
  }
}

void Coordinator::StoreResults() {
  while ((!pending_results_.empty() || !pending_phases_.empty()) && pending_logs_.empty()) {
    size_t count = std::min<size_t>(pending_results_.size(), 1000);
    std::vector<std::pair<std::string, JobResultMsg>> batch(pending_results_.begin(),
                                                            pending_results_.begin() + count);
    // Phases are progress that the next phase or the result supersedes: a phase whose
    // transaction fails is not tried again.
    std::vector<PendingPhase> phases;
    phases.swap(pending_phases_);
    std::vector<std::pair<std::string, JobUpdateMsg>> updates;
    for (const PendingPhase& phase : phases) updates.emplace_back(phase.agent_id, phase.update);
    std::vector<bool> current;
    Result<std::vector<ResultOutcome>> outcomes =
        store_.RecordJobReports(updates, batch, options_.max_attempts, &current);
    if (outcomes.ok()) {
      for (size_t i = 0; i < phases.size(); ++i) ApplyPhase(phases[i], current[i]);
    } else if (!phases.empty()) {
      spdlog::warn("{} job phase update(s) not recorded: {}", phases.size(),
                   outcomes.status().message());
    }
    if (!outcomes.ok() && outcomes.status().retryable()) {
      // Not acknowledged: the agents keep their results and send them again, and they are
      // retried here as soon as the database answers.
      if (!batch.empty()) {
        spdlog::warn(
            "result of job {} attempt {} (and {} more) held until the database answers: {}",
            batch[0].second.job.job_id, batch[0].second.job.attempt, pending_results_.size() - 1,
            outcomes.status().message());
      }
      store_retry_at_ = Clock::now() + std::chrono::milliseconds(500);
      return;
    }
    if (!outcomes.ok()) {
      // One result the database refuses must not hold back the others: one at a time.
      while (!pending_results_.empty()) {
        const auto& [agent_id, result] = pending_results_.front();
        if (!RecordResult(agent_id, result)) {
          store_retry_at_ = Clock::now() + std::chrono::milliseconds(500);
          return;
        }
        pending_results_.pop_front();
      }
      return;
    }
    for (size_t i = 0; i < count; ++i) {
      ApplyRecordedResult(batch[i].first, batch[i].second, (*outcomes)[i]);
      pending_results_.pop_front();
    }
  }
}

bool Coordinator::RecordResult(const std::string& agent_id, const JobResultMsg& result) {
  Result<ResultOutcome> outcome = store_.RecordJobResult(agent_id, result, options_.max_attempts);
  if (!outcome.ok()) {
    // Not acknowledged: the agent keeps the result and sends it again, and it is retried
    // here as soon as the database answers.
    spdlog::error(
        "{}cannot record result of job {}: {}",
        LogIds{.job = result.job.job_id, .attempt = result.job.attempt, .agent = agent_id},
        result.job.job_id, outcome.status().message());
    return !outcome.status().retryable();
  }
  ApplyRecordedResult(agent_id, result, *outcome);
  return true;
}

void Coordinator::ApplyRecordedResult(const std::string& agent_id, const JobResultMsg& result,
                                      const ResultOutcome& outcome) {
  if (!outcome.current) {
    metrics_.CountDroppedMessage("not_assigned");
    spdlog::warn("{}ignored a stale result for job {} attempt {} from agent {}",
                 LogIds{.job = result.job.job_id, .attempt = result.job.attempt, .agent = agent_id},
                 result.job.job_id, result.job.attempt, agent_id);
  } else if (result.succeeded) {
    spdlog::info("{}job {} attempt {} succeeded on {}: {}",
                 LogIds{.job = result.job.job_id, .attempt = result.job.attempt, .agent = agent_id},
                 result.job.job_id, result.job.attempt, agent_id, result.image.digest);
  } else {
    spdlog::info("{}job {} attempt {} failed on {}: {}",
                 LogIds{.job = result.job.job_id, .attempt = result.job.attempt, .agent = agent_id},
                 result.job.job_id, result.job.attempt, agent_id, result.error);
  }
  if (outcome.current) {
    auto running = running_.find(result.job.job_id);
    if (running != running_.end()) {
      const char* ended = result.succeeded ? "succeeded" : outcome.requeued ? "retried" : "failed";
      double seconds =
          std::chrono::duration<double>(Clock::now() - running->second.assigned_at).count();
      metrics_.ObserveJobDuration(running->second.platform, ended, seconds);
      metrics_.CountJob(running->second.platform, ended);
      if (result.succeeded) NoteWarmCache(agent_id, running->second);
    }
    ReleaseJob(result.job.job_id);
  }
  ApplyOutcome(outcome, "job_failed_retryable");
  SendToAgent(agent_id, AckMsg{result.job});
}

void Coordinator::RetryAttempt(const JobRef& job, const std::string& agent_id,
                               const std::string& error, const char* reason) {
  Result<ResultOutcome> outcome = store_.RecordJobResult(
      agent_id, JobResultMsg{job, false, {}, error, true}, options_.max_attempts);
  if (!outcome.ok()) {
    spdlog::error("{}cannot retry job {}: {}",
                  LogIds{.job = job.job_id, .attempt = job.attempt, .agent = agent_id}, job.job_id,
                  outcome.status().message());
    return;
  }
  auto running = running_.find(job.job_id);
  if (outcome->current && running != running_.end()) {
    metrics_.CountJob(running->second.platform, outcome->requeued ? "retried" : "failed");
  }
  ReleaseJob(job.job_id);
  ApplyOutcome(*outcome, reason);
}

void Coordinator::ApplyOutcome(const ResultOutcome& outcome, const char* retry_reason) {
  if (outcome.requeued) {
    metrics_.CountRetry(retry_reason);
    AddPending(*outcome.requeued);
  }
  if (outcome.build_failed) metrics_.CountBuild("failed");
  if (outcome.build_failed || outcome.to_merge) ForgetSecrets(outcome.build_id);
  for (const JobRecord& job : outcome.to_cancel) {
    pending_.erase(job.id);
    if (running_.count(job.id)) {
      SendToAgent(job.agent_id, CancelMsg{{job.id, job.attempt}});
      ReleaseJob(job.id);
    }
  }
  if (outcome.to_merge) RequestMerge(*outcome.to_merge);
}

void Coordinator::ReleaseJob(uint64_t job_id) {
  auto it = running_.find(job_id);
  if (it == running_.end()) return;
  auto session = sessions_.find(it->second.agent_id);
  if (session != sessions_.end()) session->second->jobs.erase(job_id);
  const std::string agent_id = it->second.agent_id;
  running_.erase(it);
  schedule_needed_ = true;
  PublishAgent(agent_id);
}

void Coordinator::FailJobsOfAgent(const std::string& agent_id, const std::string& error,
                                  const char* reason) {
  std::vector<JobRef> jobs;
  for (const auto& [job_id, running] : running_) {
    if (running.agent_id == agent_id) jobs.push_back(running.job);
  }
  for (const JobRef& job : jobs) RetryAttempt(job, agent_id, error, reason);
}

void Coordinator::ReloadAgentKeys() {
  Post([this] {
    if (!zap_) {
      spdlog::info("no agent key list to reload: the agent link is plaintext");
      return;
    }
    if (zap_->Reload().ok()) CutOffRevokedAgents();
  });
}

void Coordinator::CutOffRevokedAgents() {
  std::vector<std::string> revoked;
  for (const auto& [agent_id, session] : sessions_) {
    if (!zap_->Allowed(session->public_key)) revoked.push_back(agent_id);
  }
  for (const std::string& agent_id : revoked) {
    Session& session = *sessions_.at(agent_id);
    std::string key = CurveKeyFingerprint(session.public_key);
    spdlog::warn("agent {}: its key {} is no longer in {}; cutting it off", agent_id, key,
                 zap_->file());
    Send(session.routing_id,
         RejectMsg{"this agent's key " + key + " was removed from the coordinator's agent key list",
                   true});
    FailJobsOfAgent(agent_id, "agent " + agent_id + "'s key was revoked", "agent_revoked");
    store_.SetAgentState(agent_id, "lost");
    RemoveSession(agent_id);
  }
}

void Coordinator::RemoveSession(const std::string& agent_id) {
  auto it = sessions_.find(agent_id);
  if (it == sessions_.end()) return;
  agent_by_routing_id_.erase(it->second->routing_id);
  sessions_.erase(it);
  PublishAgent(agent_id);
}

void Coordinator::CheckLiveness() {
  Clock::time_point now = Clock::now();
  auto limit = options_.heartbeat_interval * options_.missed_heartbeats;
  std::vector<std::string> lost;
  for (const auto& [agent_id, session] : sessions_) {
    if (now - session->last_seen > limit) lost.push_back(agent_id);
  }
  for (auto it = unintroduced_.begin(); it != unintroduced_.end();) {
    it = now - it->second.first > limit * 10 ? unintroduced_.erase(it) : std::next(it);
  }
  // An idle budget is full again anyway once the burst has refilled.
  auto refill_time = std::chrono::duration<double>(
      static_cast<double>(options_.log_burst_bytes) /
      static_cast<double>(std::max<uint64_t>(options_.log_bytes_per_second, 1)));
  for (auto it = log_budgets_.begin(); it != log_budgets_.end();) {
    it = now - it->second.refilled > refill_time ? log_budgets_.erase(it) : std::next(it);
  }
  for (auto it = awaited_agents_.begin(); it != awaited_agents_.end();) {
    if (now > it->second) {
      lost.push_back(it->first);
      it = awaited_agents_.erase(it);
    } else {
      ++it;
    }
  }
  for (const std::string& agent_id : lost) {
    spdlog::warn("agent {} is lost (no heartbeat for {} ms); retrying its jobs", agent_id,
                 std::chrono::duration_cast<std::chrono::milliseconds>(limit).count());
    auto session = sessions_.find(agent_id);
    if (session != sessions_.end()) {
      for (const PlatformOffer& offer : session->second->platforms) {
        metrics_.CountAgentLost(offer.platform);
      }
    }
    FailJobsOfAgent(agent_id, "agent " + agent_id + " was lost (missed heartbeats)", "agent_lost");
    store_.SetAgentState(agent_id, "lost");
    RemoveSession(agent_id);
  }
}

void Coordinator::DrainInbox() {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(inbox_mutex_);
    tasks.swap(inbox_);
  }
  for (auto& task : tasks) task();
}

void Coordinator::AcceptLog(const std::string& agent_id, const LogChunkMsg& chunk) {
  if (pending_logs_.size() >= 100000) {
    spdlog::warn("{}dropped a log chunk of job {}: {} chunks wait for the database",
                 LogIds{.job = chunk.job.job_id, .attempt = chunk.job.attempt, .agent = agent_id},
                 chunk.job.job_id, pending_logs_.size());
    return;
  }
  Clock::time_point now = Clock::now();
  auto [it, created] = log_budgets_.try_emplace(chunk.job.job_id);
  LogBudget& budget = it->second;
  if (created) {
    budget.bytes = static_cast<double>(options_.log_burst_bytes);
  } else {
    double refill = std::chrono::duration<double>(now - budget.refilled).count() *
                    static_cast<double>(options_.log_bytes_per_second);
    budget.bytes = std::min(budget.bytes + refill, static_cast<double>(options_.log_burst_bytes));
  }
  budget.refilled = now;
  double size = static_cast<double>(chunk.data.size());
  if (chunk.data.size() <= options_.log_chunk_max_bytes && size <= budget.bytes) {
    budget.bytes -= size;
    budget.dropping = false;
    pending_logs_.push_back({chunk, agent_id});
    StoreLogs();
    return;
  }
  metrics_.CountDroppedMessage("log_limit");
  if (budget.dropping) return;
  // The first chunk dropped in a run is replaced by a notice, so whoever reads the log
  // knows that output is missing and why.
  budget.dropping = true;
  std::string why = "more than " + std::to_string(options_.log_bytes_per_second) +
                    " bytes/s (bursts up to " + std::to_string(options_.log_burst_bytes) +
                    " bytes, chunks up to " + std::to_string(options_.log_chunk_max_bytes) +
                    " bytes)";
  spdlog::warn("{}job {} attempt {} on agent {}: dropping build output: {}",
               LogIds{.job = chunk.job.job_id, .attempt = chunk.job.attempt, .agent = agent_id},
               chunk.job.job_id, chunk.job.attempt, agent_id, why);
  LogChunkMsg notice = chunk;
  notice.data = "\nmanifold: build output dropped here: the job sent " + why +
                "; see the coordinator's --log-bytes-per-second\n";
  pending_logs_.push_back({std::move(notice), agent_id});
  StoreLogs();
}

void Coordinator::StoreLogs() {
  while (!pending_logs_.empty()) {
    const PendingLog& log = pending_logs_.front();
    Result<bool> stored =
        store_.AppendLog(log.chunk.job, log.agent_id, log.chunk.seq, log.chunk.data);
    if (!stored.ok() && stored.status().retryable()) {  // the database is away
      store_retry_at_ = Clock::now() + std::chrono::milliseconds(500);
      return;
    }
    if (!stored.ok()) spdlog::warn("log chunk lost: {}", stored.status().message());
    if (stored.ok() && !*stored) {
      metrics_.CountDroppedMessage("not_assigned");
      spdlog::warn("dropped a log chunk from agent {} for job {} attempt {}, not assigned to it",
                   log.agent_id, log.chunk.job.job_id, log.chunk.job.attempt);
    }
    pending_logs_.pop_front();
  }
}

void Coordinator::CheckDeadlines() {
  Clock::time_point now = Clock::now();
  std::vector<RunningJob> expired;
  for (const auto& [job_id, running] : running_) {
    if (now > running.deadline) expired.push_back(running);
  }
  for (const RunningJob& running : expired) {
    std::string limit =
        running.timeout_s > 0 ? std::to_string(running.timeout_s) + " s" : "its job timeout";
    std::string error = "timed out after " + limit;
    Result<ResultOutcome> outcome = store_.EndJob(
        running.job.job_id, running.job.attempt, "timed_out", error,
        running.platform.ToString() + " timed out on agent " + running.agent_id + " after " +
            limit + " (attempt " + std::to_string(running.job.attempt) + ")");
    if (!outcome.ok()) {
      spdlog::error(
          "{}cannot time out job {}: {}",
          LogIds{
              .job = running.job.job_id, .attempt = running.job.attempt, .agent = running.agent_id},
          running.job.job_id, outcome.status().message());
      continue;
    }
    spdlog::warn(
        "{}job {} attempt {} on {} {}",
        LogIds{
            .job = running.job.job_id, .attempt = running.job.attempt, .agent = running.agent_id},
        running.job.job_id, running.job.attempt, running.agent_id, error);
    SendToAgent(running.agent_id, CancelMsg{running.job});
    metrics_.CountJob(running.platform, "timed_out");
    ReleaseJob(running.job.job_id);
    ApplyOutcome(*outcome, "timed_out");
  }
}

void Coordinator::CheckQueueTimeouts() {
  Clock::time_point now = Clock::now();
  std::set<Platform> served, served_natively;
  for (const auto& [agent_id, session] : sessions_) {
    if (session->draining) continue;
    for (const PlatformOffer& offer : session->platforms) {
      served.insert(offer.platform);
      platform_seen_[offer.platform] = now;
      if (!offer.emulated) {
        served_natively.insert(offer.platform);
        native_seen_[offer.platform] = now;
      }
    }
  }
  std::vector<WaitingJob> expired;
  for (auto& [job_id, waiting] : pending_) {
    const Platform& platform = waiting.job.platform;
    const bool native_only = waiting.job.spec->emulation == EmulationPolicy::kNever;
    if (!waiting.native_wait_over && now - waiting.since >= options_.emulation_fallback_wait) {
      waiting.native_wait_over = true;
      schedule_needed_ = true;  // an emulated agent may take it now
    }
    if ((native_only ? served_natively : served).count(platform)) continue;
    Clock::time_point reference = std::max(waiting.since, started_);
    const auto& seen_map = native_only ? native_seen_ : platform_seen_;
    auto seen = seen_map.find(platform);
    if (seen != seen_map.end()) reference = std::max(reference, seen->second);
    if (now - reference > options_.queue_timeout) expired.push_back(waiting);
  }
  for (const WaitingJob& waiting : expired) {
    std::string platform = waiting.job.platform.ToString();
    std::string waited =
        std::to_string(
            std::chrono::duration_cast<std::chrono::seconds>(options_.queue_timeout).count()) +
        " s";
    const bool native_only = waiting.job.spec->emulation == EmulationPolicy::kNever;
    std::string error =
        native_only && served.count(waiting.job.platform)
            ? platform + ": no native agent for this platform was connected for " + waited +
                  ", and the build's --emulation never rules out the emulated ones; start a "
                  "native agent or build with --emulation fallback"
            : platform + ": no agent serving this platform was connected for " + waited +
                  "; start one (manifold-agent --platform " + platform + ") or drop the platform";
    Result<ResultOutcome> outcome = store_.EndJob(waiting.job.job_id, std::nullopt, "failed",
                                                  "no agent for " + platform, error);
    if (!outcome.ok()) {
      spdlog::error("{}cannot fail job {}: {}",
                    LogIds{.build = waiting.job.build_id, .job = waiting.job.job_id},
                    waiting.job.job_id, outcome.status().message());
      continue;
    }
    spdlog::warn("{}job {}: no agent for {} within {}",
                 LogIds{.build = waiting.job.build_id, .job = waiting.job.job_id},
                 waiting.job.job_id, platform, waited);
    pending_.erase(waiting.job.job_id);
    metrics_.CountJob(waiting.job.platform, "no_agent");
    ApplyOutcome(*outcome, "no_agent");
  }
}

void Coordinator::ScheduleJobs() {
  schedule_needed_ = false;
  if (pending_.empty()) return;
  std::vector<SchedulerAgent> agents;
  Clock::time_point now = Clock::now();
  for (const auto& [agent_id, session] : sessions_) {
    if (session->draining || session->jobs.size() >= session->slots) continue;
    SchedulerAgent agent{agent_id, session->platforms,
                         session->slots - static_cast<uint32_t>(session->jobs.size())};
    if (auto warm = warm_caches_.find(agent_id); warm != warm_caches_.end()) {
      for (const auto& [key, built_at] : warm->second) {
        if (now - built_at <= options_.cache_affinity_window) agent.warm.insert(key);
      }
    }
    agents.push_back(std::move(agent));
  }
  if (agents.empty()) return;  // every slot is busy: nothing to decide
  std::vector<PendingJob> pending;
  pending.reserve(pending_.size());
  for (const auto& [job_id, waiting] : pending_) {
    pending.push_back({job_id, waiting.job.platform, waiting.job.spec->emulation,
                       waiting.native_wait_over, waiting.repository});
  }
  std::vector<Assignment> assignments = Schedule(pending, std::move(agents));
  if (assignments.empty()) return;
  // One transaction for the whole pass: one commit however many slots freed up meanwhile.
  std::vector<JobAssignment> batch;
  for (const Assignment& a : assignments) {
    const WaitingJob& waiting = pending_.at(a.job_id);
    batch.push_back({a.job_id, a.agent_id, a.emulated,
                     DescribePlacement(a, waiting.job.spec->emulation, waiting.repository)});
  }
  Result<std::vector<uint32_t>> attempts = store_.AssignJobs(batch);
  if (!attempts.ok()) {
    spdlog::error("cannot assign {} job(s): {}", batch.size(), attempts.status().message());
    schedule_needed_ = true;  // try again on the next turn of the loop
    return;
  }
  for (size_t i = 0; i < assignments.size(); ++i) {
    const Assignment& assignment = assignments[i];
    const uint32_t attempt = (*attempts)[i];
    if (attempt == 0) {
      pending_.erase(assignment.job_id);  // canceled or failed meanwhile
      continue;
    }
    const WaitingJob& waiting = pending_.at(assignment.job_id);
    const QueuedJob& job = waiting.job;
    AssignMsg assign;
    assign.job = {job.job_id, attempt};
    assign.build_id = job.build_id;
    assign.platform = job.platform;
    assign.context_digest = job.spec->context_digest;
    assign.context_url = options_.public_url + "/v1/contexts/" + job.spec->context_digest;
    if (options_.context_url_query) {
      assign.context_url += options_.context_url_query(job.spec->context_digest);
    }
    assign.dockerfile = job.spec->dockerfile;
    assign.dockerfile_path = job.spec->dockerfile_path;
    assign.build_args = job.spec->build_args;
    assign.target = job.spec->target;
    assign.repositories = Repositories(*job.spec);
    assign.labels = job.spec->labels;
    assign.annotations = job.spec->manifest_annotations;
    assign.no_cache = job.spec->no_cache;
    assign.pull = job.spec->pull;
    if (auto secrets = secrets_.find(job.build_id); secrets != secrets_.end()) {
      assign.secrets = *secrets->second;
    }
    spdlog::info("{}job {} ({} of build {}) attempt {} -> agent {} ({})",
                 LogIds{.build = job.build_id,
                        .job = job.job_id,
                        .attempt = attempt,
                        .agent = assignment.agent_id},
                 job.job_id, job.platform.ToString(), job.build_id, attempt, assignment.agent_id,
                 batch[i].placement);
    metrics_.ObserveQueueWait(job.platform,
                              std::chrono::duration<double>(now - waiting.since).count());
    running_[job.job_id] = {assign.job,
                            assignment.agent_id,
                            job.platform,
                            now + std::chrono::seconds(job.spec->job_timeout_s),
                            job.spec->job_timeout_s,
                            now,
                            waiting.repository};
    sessions_.at(assignment.agent_id)->jobs.insert(job.job_id);
    SendToAgent(assignment.agent_id, assign);
    PublishAgent(assignment.agent_id);
    pending_.erase(assignment.job_id);
  }
}

void Coordinator::PruneLogs() {
  if (options_.log_retention.count() == 0) return;
  // A quarter of the retention between passes, within a second and a minute: short
  // retentions (tests) are kept closely, long ones cost one small query a minute.
  auto every = std::clamp<std::chrono::steady_clock::duration>(
      options_.log_retention / 4, std::chrono::seconds(1), std::chrono::minutes(1));
  if (Clock::now() - logs_pruned_at_ < every) return;
  logs_pruned_at_ = Clock::now();
  Result<int> pruned = store_.PruneLogs(options_.log_retention, 100);
  if (!pruned.ok()) {
    spdlog::warn("cannot prune old build logs: {}", pruned.status().message());
  } else if (*pruned > 0) {
    spdlog::info("deleted the logs of {} build(s) that ended over {} s ago", *pruned,
                 options_.log_retention.count());
  }
}

void Coordinator::UpdateGauges() {
  std::map<Platform, PlatformLoad> load;
  for (const auto& [job_id, waiting] : pending_) ++load[waiting.job.platform].pending;
  for (const auto& [job_id, running] : running_) ++load[running.platform].running;
  for (const auto& [agent_id, session] : sessions_) {
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
    }
  }
  metrics_.SetLoad(load);
  // Builds by state come from the store, which holds them all; a few seconds stale is fine.
  if (Clock::now() - builds_counted_ > std::chrono::seconds(5)) {
    builds_counted_ = Clock::now();
    Result<std::map<std::string, int>> counts = store_.CountBuildsByState();
    if (counts.ok()) metrics_.SetBuildsByState(*counts);
  }
}

void Coordinator::PublishLastSeen(const std::string& agent_id, Clock::time_point at) {
  std::lock_guard lock(agents_mutex_);
  auto it = published_agents_.find(agent_id);
  if (it != published_agents_.end()) it->second.last_seen = at;
}

void Coordinator::PublishAgent(const std::string& agent_id) {
  auto it = sessions_.find(agent_id);
  std::lock_guard lock(agents_mutex_);
  if (it == sessions_.end()) {
    published_agents_.erase(agent_id);
    return;
  }
  const Session& session = *it->second;
  PublishedAgent& published = published_agents_[agent_id];
  published.view.id = agent_id;
  published.view.hostname = session.hostname;
  published.view.version = session.version;
  published.view.platforms = session.platforms;
  published.view.slots = session.slots;
  published.view.busy = static_cast<uint32_t>(session.jobs.size());
  published.view.state = session.draining ? "draining" : "online";
  published.last_seen = session.last_seen;
}

void Coordinator::RequestMerge(BuildRecord build) {
  std::lock_guard lock(merge_mutex_);
  merge_queue_.push_back(std::move(build));
  merge_wakeup_.notify_one();
}

void Coordinator::MergeLoop() {
  while (true) {
    BuildRecord build;
    {
      std::unique_lock lock(merge_mutex_);
      std::optional<size_t> next;
      merge_wakeup_.wait(lock, [&] {
        return stopping_ || (next = NextMerge(merge_queue_, merge_tags_in_flight_)).has_value();
      });
      if (stopping_) return;
      build = std::move(merge_queue_[*next]);
      merge_queue_.erase(merge_queue_.begin() + static_cast<std::ptrdiff_t>(*next));
      merge_tags_in_flight_.insert(build.spec.tags.begin(), build.spec.tags.end());
    }
    MergeBuild(build);
    {
      std::lock_guard lock(merge_mutex_);
      for (const std::string& tag : build.spec.tags) merge_tags_in_flight_.erase(tag);
    }
    merge_wakeup_.notify_all();  // a build that waited for these tags may go now
  }
}

void Coordinator::MergeBuild(const BuildRecord& build) {
  const uint64_t build_id = build.id;
  // Transient registry or database trouble is retried with back-off; the build stays
  // in state merging meanwhile, and a restarted coordinator picks it up again.
  Status status;
  for (int attempt = 1; attempt <= 5 && !stopping_; ++attempt) {
    Result<PushedIndex> pushed = merger_.MergeAndPushIndex(build);
    if (pushed.ok()) {
      spdlog::info("{}build {}: index {} pushed to {} tag(s)", LogIds{.build = build_id}, build_id,
                   pushed->digest, build.spec.tags.size());
      Result<double> took = store_.CompleteBuild(build_id, pushed->digest, pushed->media_type);
      status = took.status();
      if (took.ok()) {
        metrics_.CountBuild("succeeded");
        metrics_.ObserveBuildDuration(*took);
      }
    } else {
      status = pushed.status();
      if (!status.retryable()) break;
    }
    if (status.ok()) break;
    spdlog::warn("{}build {}: merge attempt {} failed: {}", LogIds{.build = build_id}, build_id,
                 attempt, status.message());
    std::unique_lock lock(merge_mutex_);
    merge_backoff_.wait_for(lock, std::chrono::seconds(1 << attempt),
                            [&] { return stopping_.load(); });
  }
  if (!status.ok() && !stopping_) {
    spdlog::error("{}build {} failed at merge: {}", LogIds{.build = build_id}, build_id,
                  status.message());
    metrics_.CountBuild("failed");
    Status failed =
        store_.FailBuild(build_id, "pushing the image index failed: " + status.message());
    if (!failed.ok())
      spdlog::error("{}cannot record failure of build {}: {}", LogIds{.build = build_id}, build_id,
                    failed.message());
  }
}

}  // namespace manifold
