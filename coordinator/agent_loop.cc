#include "coordinator/agent_loop.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "common/curve_keys.h"
#include "common/log.h"
#include "coordinator/reconcile.h"
#include "coordinator/scheduler.h"
#include "coordinator/waiting_reasons.h"

namespace manifold {

namespace {

std::string RandomSessionId() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buffer[17];
  snprintf(buffer, sizeof(buffer), "%016llx", static_cast<unsigned long long>(rng()));
  return buffer;
}

LogIds IdsOf(const JobRef& job, const std::string& agent_id) {
  return LogIds{.job = job.job_id, .attempt = job.attempt, .agent = agent_id};
}

}  // namespace

AgentLoop::AgentLoop(LoopStore& store, AgentLink& link, Metrics& metrics,
                     RequestMerge request_merge, LoopOptions options, LoopClock::time_point now)
    : store_(store),
      link_(link),
      metrics_(metrics),
      request_merge_(std::move(request_merge)),
      options_(std::move(options)),
      started_(now),
      log_budget_(options_.log_limits),
      reports_(
          store, metrics, options_.max_retries, options_.log_limits,
          {[this](const JobReports::Phase& phase, bool current) { ApplyPhase(phase, current); },
           [this](const std::string& agent_id, const JobResultMsg& result,
                  const ResultOutcome& outcome,
                  LoopClock::time_point at) { ApplyResult(agent_id, result, outcome, at); },
           [this](const std::string& agent_id, bool hold) {
             SendToAgent(agent_id, LogFlowMsg{hold});
           }}),
      unknown_outcomes_seen_(store.unknown_outcomes()),
      last_checked_(now) {}

Status AgentLoop::Resume(LoopClock::time_point now) { return ReadView(now, /*at_start=*/true); }

void AgentLoop::Enqueue(std::vector<QueuedJob> jobs,
                        std::shared_ptr<const std::map<std::string, std::string>> secrets,
                        LoopClock::time_point now) {
  if (secrets && !secrets->empty() && !jobs.empty()) {
    secrets_[jobs.front().build_id] = std::move(secrets);
  }
  for (QueuedJob& job : jobs) {
    // Read back from the store already (ReadWorkBack) and maybe assigned since.
    if (running_.count(job.job_id)) continue;
    AddPending(std::move(job), now);
  }
}

void AgentLoop::BuildCanceled(const std::vector<JobRecord>& jobs) {
  for (const JobRecord& job : jobs) {
    secrets_.erase(job.build_id);
    pending_.erase(job.id);
    if (!running_.count(job.id)) continue;
    spdlog::info(
        "{}job {} attempt {}: canceling on agent {}",
        LogIds{.build = job.build_id, .job = job.id, .attempt = job.attempt, .agent = job.agent_id},
        job.id, job.attempt, job.agent_id);
    SendToAgent(job.agent_id, CancelMsg{{job.id, job.attempt}});
    ReleaseJob(job.id);
  }
}

void AgentLoop::Drain(const std::string& agent_id) {
  AgentSession* session = sessions_.Find(agent_id);
  if (session == nullptr) return;
  spdlog::info("draining agent {} on request", agent_id);
  session->draining = true;
  if (Status stored = store_.SetAgentState(agent_id, "draining"); !stored.ok()) {
    spdlog::warn("agent {}: draining not recorded: {}", agent_id, stored.message());
  }
  sessions_.Publish(agent_id);  // before the agent hears it, so the API never shows otherwise
  link_.Send(session->routing_id, DrainMsg{});
}

void AgentLoop::AddPending(QueuedJob job, LoopClock::time_point now) {
  if (!job.spec->secret_ids.empty() && !secrets_.count(job.build_id)) {
    return FailJobWithoutSecrets(job, now);
  }
  uint64_t id = job.job_id;
  std::vector<std::string> repositories = Repositories(*job.spec);
  std::string repository = repositories.empty() ? "" : repositories.front();
  pending_[id] = {std::move(job), now, std::move(repository)};
  schedule_needed_ = true;
}

void AgentLoop::FailJobWithoutSecrets(const QueuedJob& job, LoopClock::time_point now) {
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
  ApplyOutcome(*outcome, "secrets_lost", now);
}

void AgentLoop::SendToAgent(const std::string& agent_id, const CoordinatorMessage& message) {
  if (AgentSession* session = sessions_.Find(agent_id)) link_.Send(session->routing_id, message);
}

void AgentLoop::CountMalformed(const std::string& why) {
  ++malformed_frames_;
  metrics_.CountMalformedFrame();
  spdlog::warn("dropped a frame from an agent: {}", why);
}

void AgentLoop::HandleFrame(const std::string& routing_id, const std::string& peer_key,
                            const std::string& frame, LoopClock::time_point now) {
  Result<AgentMessage> decoded = DecodeAgentMessage(frame, options_.limits);
  if (!decoded.ok()) return CountMalformed(decoded.status().message());
  if (auto* hello = std::get_if<HelloMsg>(&*decoded)) {
    return HandleHello(routing_id, peer_key, *hello, now);
  }
  AgentSession* known = sessions_.FindByRoute(routing_id);
  if (known == nullptr) {
    // Typically the coordinator restarted and the agent's queued messages arrived before
    // it noticed: keep them (bounded) for after its hello, and ask it to say hello.
    if (sessions_.HoldUnintroduced(routing_id, frame, now)) {
      link_.Send(routing_id, RejectMsg{"unknown agent session; say hello again", false});
    }
    return;
  }
  AgentSession& session = *known;
  sessions_.Seen(session, now);
  std::visit(
      [&](const auto& message) {
        using T = std::decay_t<decltype(message)>;
        if constexpr (std::is_same_v<T, HeartbeatMsg>) {
          // The agent's count of assigns read says which assignments it has seen: one it
          // has not may still be on its way, however late this heartbeat is handled.
          ApplyReconciliation(session.agent_id,
                              Reconcile(running_, session.jobs, session.agent_id,
                                        message.running_jobs, message.assigns_received),
                              "does not hold it: its assignment was lost", "assignment_lost", now);
        } else if constexpr (std::is_same_v<T, JobUpdateMsg>) {
          reports_.AddPhase(session.agent_id, message, now);
        } else if constexpr (std::is_same_v<T, LogChunkMsg>) {
          AcceptLog(session.agent_id, message, now);
        } else if constexpr (std::is_same_v<T, JobResultMsg>) {
          reports_.AddResult(session.agent_id, message, now);
        } else if constexpr (std::is_same_v<T, DrainingMsg>) {
          session.draining = true;
          if (Status stored = store_.SetAgentState(session.agent_id, "draining"); !stored.ok()) {
            spdlog::warn("agent {}: draining not recorded: {}", session.agent_id, stored.message());
          }
          sessions_.Publish(session.agent_id);
        } else if constexpr (std::is_same_v<T, GoodbyeMsg>) {
          spdlog::info("agent {} said goodbye", session.agent_id);
          reports_.Flush(now);
          std::string agent_id = session.agent_id;
          EndSession(agent_id, "agent " + agent_id + " left while building", "agent_left", now);
        } else {
          static_assert(std::is_same_v<T, HelloMsg>, "every agent message is handled");
        }
      },
      *decoded);
}

void AgentLoop::HandleHello(const std::string& routing_id, const std::string& peer_key,
                            const HelloMsg& hello, LoopClock::time_point now) {
  // Results that came before this hello are recorded first: otherwise a job this agent
  // finished and no longer holds would look lost with its previous process.
  reports_.Flush(now);
  auto reject = [&](const std::string& reason, bool fatal = true) {
    spdlog::warn("refused agent {}: {}", hello.agent_id, reason);
    link_.Send(routing_id, RejectMsg{reason, fatal});
  };
  if (std::optional<std::string> refusal = RefuseHello(hello)) return reject(*refusal);
  AgentSession* existing = sessions_.Find(hello.agent_id);
  if (existing != nullptr && existing->public_key != peer_key) {
    // Results are fenced on the agent id: one key must not take over another's session.
    // Not fatal: the refused agent says hello again now and then, so the real one (either
    // may be the impostor) joins once the other leaves.
    return reject("agent id " + hello.agent_id + " is in use by another key (" +
                      CurveKeyFingerprint(existing->public_key) + "); give each agent its own --id",
                  /*fatal=*/false);
  }
  if (Status stored = store_.UpsertAgent(hello); !stored.ok()) {
    // Not fatal for the agent: it says hello again when its session stays unknown.
    spdlog::error("cannot register agent {}: {}", hello.agent_id, stored.message());
    return;
  }
  AgentSession& session = sessions_.Open(hello, routing_id, peer_key, now);
  reports_.AgentSessionStarted(hello.agent_id);  // its welcome ends any hold on its output

  // Jobs the store gave this agent that it no longer holds were lost with its previous
  // process, whenever they were assigned; the ones it still holds keep running.
  GivenJobs given;
  for (const auto& [job_id, running] : running_) {
    if (running.agent_id == hello.agent_id) given[job_id] = 0;
  }
  Reconciliation reconciled = Reconcile(running_, given, hello.agent_id, hello.running_jobs, 0);
  std::set<JobRef> held(hello.running_jobs.begin(), hello.running_jobs.end());
  for (const auto& [job_id, assign] : given) {
    if (held.count(running_.at(job_id).job)) {
      session.jobs[job_id] = 0;
      unrecorded_losses_.erase(job_id);
    }
  }
  ApplyReconciliation(hello.agent_id, reconciled, "restarted during the job", "agent_restarted",
                      now);
  std::string offers;
  for (const PlatformOffer& offer : hello.platforms) {
    offers += (offers.empty() ? "" : ", ") + offer.platform.ToString() +
              (offer.emulated ? " (emulated)" : "");
  }
  std::string key = link_.DescribeKey(peer_key);
  spdlog::info("agent {} ({}) online: {}, {} slot(s){}", hello.agent_id, hello.hostname, offers,
               hello.slots, key.empty() ? "" : ", key " + key);
  std::vector<Platform> platforms;
  for (const PlatformOffer& offer : hello.platforms) platforms.push_back(offer.platform);
  link_.Send(
      routing_id,
      WelcomeMsg{RandomSessionId(), static_cast<uint32_t>(options_.heartbeat_interval.count()),
                 WarmStartCaches(cache_pushes_, cache_refs_, platforms, options_.cache.ttl,
                                 options_.warm_start_caches, now),
                 static_cast<uint32_t>(options_.cache.ttl.count())});
  schedule_needed_ = true;
  sessions_.Publish(hello.agent_id);
  std::vector<std::string> frames = sessions_.TakeUnintroduced(routing_id);
  if (!frames.empty()) {
    spdlog::info("agent {}: replaying {} message(s) sent before its hello", hello.agent_id,
                 frames.size());
  }
  for (const std::string& frame : frames) {
    // A heartbeat sent before the hello says less than the hello did, and counts assigns
    // of an earlier session: reconciled, it could lose a job the hello holds.
    Result<AgentMessage> decoded = DecodeAgentMessage(frame, options_.limits);
    if (decoded.ok() && std::holds_alternative<HeartbeatMsg>(*decoded)) continue;
    HandleFrame(routing_id, peer_key, frame, now);
  }
}

void AgentLoop::AcceptLog(const std::string& agent_id, const LogChunkMsg& chunk,
                          LoopClock::time_point now) {
  switch (log_budget_.Charge(chunk.job.job_id, chunk.data.size(), now)) {
    case LogBudget::Verdict::kStore:
      return reports_.AddLog(agent_id, chunk, now);
    case LogBudget::Verdict::kDrop:
      metrics_.CountDroppedMessage("log_limit");
      return;
    case LogBudget::Verdict::kReplaceByNotice: {
      metrics_.CountDroppedMessage("log_limit");
      spdlog::warn("{}job {} attempt {} on agent {}: dropping build output: {}",
                   IdsOf(chunk.job, agent_id), chunk.job.job_id, chunk.job.attempt, agent_id,
                   log_budget_.DropReason());
      LogChunkMsg notice = chunk;
      notice.data = log_budget_.Notice();
      return reports_.AddLog(agent_id, std::move(notice), now);
    }
  }
}

void AgentLoop::ApplyPhase(const JobReports::Phase& phase, bool current) {
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
                 IdsOf(job, phase.agent_id), phase.agent_id, job.job_id, job.attempt);
    SendToAgent(phase.agent_id, CancelMsg{job});
  }
}

void AgentLoop::ApplyResult(const std::string& agent_id, const JobResultMsg& result,
                            const ResultOutcome& outcome, LoopClock::time_point now) {
  const JobRef& job = result.job;
  if (!outcome.current) {
    metrics_.CountDroppedMessage("not_assigned");
    spdlog::warn("{}ignored a stale result for job {} attempt {} from agent {}",
                 IdsOf(job, agent_id), job.job_id, job.attempt, agent_id);
  } else if (result.succeeded) {
    spdlog::info("{}job {} attempt {} succeeded on {}: {}", IdsOf(job, agent_id), job.job_id,
                 job.attempt, agent_id, result.image.digest);
  } else {
    spdlog::info("{}job {} attempt {} failed on {}: {}", IdsOf(job, agent_id), job.job_id,
                 job.attempt, agent_id, result.error);
  }
  if (outcome.current) {
    auto running = running_.find(job.job_id);
    if (running != running_.end()) {
      const RunningJob& ran = running->second;
      const char* ended = result.succeeded ? "succeeded" : outcome.requeued ? "retried" : "failed";
      const double seconds = std::chrono::duration<double>(now - ran.assigned_at).count();
      metrics_.ObserveJobDuration(ran.platform, ended, seconds);
      metrics_.CountJob(ran.platform, ended);
      // A job resumed after a restart has no repository here: neither its cache nor its
      // start is known.
      if (result.succeeded && !ran.repository.empty()) {
        metrics_.ObserveCachedJob(
            ran.platform, JobCacheName(ran.cache), seconds,
            cold_times_.Observe(ran.repository, ran.platform, ran.cache, seconds));
        NoteWarm(warm_caches_[agent_id], ran.repository, ran.platform, now,
                 options_.cache_affinity_window);
        if (!result.cache_pushed.empty()) NoteCachePush(ran, result.cache_pushed, now);
      }
    }
    ReleaseJob(job.job_id);
    if (result.refused) {
      if (AgentSession* session = sessions_.Find(agent_id)) {
        session->refused_until = now + options_.heartbeat_interval;
        refusals_end_ = std::max(refusals_end_, session->refused_until);
      }
    }
  }
  ApplyOutcome(outcome, result.refused ? "refused" : "job_failed_retryable", now);
  SendToAgent(agent_id, AckMsg{job});
}

void AgentLoop::NoteCachePush(const RunningJob& ran, const std::string& cache_ref,
                              LoopClock::time_point now) {
  cache_pushes_[{ran.repository, ran.platform}] = now;
  cache_refs_[{ran.repository, ran.platform}] = cache_ref;
  // Only a placement hint: a push not recorded makes a later job's placement "least
  // loaded" instead of "registry cache", and the next push records it.
  if (Status s = store_.RecordCachePush(ran.repository, ran.platform, cache_ref); !s.ok()) {
    spdlog::warn("{}: registry cache push to {} not recorded: {}", ran.repository, cache_ref,
                 s.message());
  }
}

void AgentLoop::ApplyReconciliation(const std::string& agent_id, const Reconciliation& reconciled,
                                    const char* lost_because, const char* reason,
                                    LoopClock::time_point now) {
  for (const JobRef& job : reconciled.to_cancel) {
    spdlog::warn("{}agent {} holds job {} attempt {}, which is not its job; canceling it",
                 IdsOf(job, agent_id), agent_id, job.job_id, job.attempt);
    SendToAgent(agent_id, CancelMsg{job});
  }
  for (const JobRef& job : reconciled.lost) {
    spdlog::warn("{}agent {} {}; retrying job {}", IdsOf(job, agent_id), agent_id, lost_because,
                 job.job_id);
    RetryAttempt(job, agent_id, "agent " + agent_id + " " + lost_because, reason, now);
  }
}

void AgentLoop::RetryAttempt(const JobRef& job, const std::string& agent_id,
                             const std::string& error, const char* reason,
                             LoopClock::time_point now) {
  Result<ResultOutcome> outcome = store_.RecordJobResult(
      agent_id, JobResultMsg{job, false, {}, error, true}, options_.max_retries);
  if (!outcome.ok()) {
    spdlog::error("{}cannot retry job {}{}: {}", IdsOf(job, agent_id), job.job_id,
                  outcome.status().retryable() ? " until the database answers" : "",
                  outcome.status().message());
    // The job stays with the agent in the loop's view, where nothing schedules it, until
    // the store takes the retry (RecordUnrecordedLosses): dropping it would leave the job
    // held by a lost agent until its timeout.
    if (outcome.status().retryable()) {
      unrecorded_losses_[job.job_id] = {job, agent_id, error, reason};
    }
    return;
  }
  unrecorded_losses_.erase(job.job_id);
  auto running = running_.find(job.job_id);
  if (outcome->current && running != running_.end()) {
    metrics_.CountJob(running->second.platform, outcome->requeued ? "retried" : "failed");
  }
  ReleaseJob(job.job_id);
  ApplyOutcome(*outcome, reason, now);
}

void AgentLoop::ApplyOutcome(const ResultOutcome& outcome, const char* retry_reason,
                             LoopClock::time_point now) {
  if (outcome.requeued) {
    metrics_.CountRetry(retry_reason);
    AddPending(*outcome.requeued, now);
  }
  if (outcome.build_failed) metrics_.CountBuild("failed");
  // A build that can run no job again needs its secrets no more.
  if (outcome.build_failed || outcome.to_merge) secrets_.erase(outcome.build_id);
  for (const JobRecord& job : outcome.to_cancel) {
    pending_.erase(job.id);
    if (running_.count(job.id)) {
      SendToAgent(job.agent_id, CancelMsg{{job.id, job.attempt}});
      ReleaseJob(job.id);
    }
  }
  if (outcome.to_merge) request_merge_(*outcome.to_merge);
}

void AgentLoop::ReleaseJob(uint64_t job_id) {
  auto it = running_.find(job_id);
  if (it == running_.end()) return;
  const std::string agent_id = it->second.agent_id;
  reports_.AttemptEnded(it->second.job);
  if (AgentSession* session = sessions_.Find(agent_id)) session->jobs.erase(job_id);
  running_.erase(it);
  schedule_needed_ = true;
  sessions_.Publish(agent_id);
}

void AgentLoop::EndSession(const std::string& agent_id, const std::string& error,
                           const char* reason, LoopClock::time_point now) {
  std::vector<JobRef> jobs;
  for (const auto& [job_id, running] : running_) {
    if (running.agent_id == agent_id) jobs.push_back(running.job);
  }
  for (const JobRef& job : jobs) RetryAttempt(job, agent_id, error, reason, now);
  if (Status stored = store_.SetAgentState(agent_id, "lost"); !stored.ok()) {
    spdlog::warn("agent {}: its loss not recorded: {}", agent_id, stored.message());
  }
  sessions_.Close(agent_id);
}

void AgentLoop::CutOffAgents(const std::function<bool(const std::string& key)>& allowed,
                             const std::string& key_list, LoopClock::time_point now) {
  std::vector<std::string> revoked;
  for (const auto& [agent_id, session] : sessions_.all()) {
    if (!allowed(session->public_key)) revoked.push_back(agent_id);
  }
  for (const std::string& agent_id : revoked) {
    AgentSession& session = *sessions_.Find(agent_id);
    std::string key = CurveKeyFingerprint(session.public_key);
    spdlog::warn("agent {}: its key {} is no longer in {}; cutting it off", agent_id, key,
                 key_list);
    link_.Send(
        session.routing_id,
        RejectMsg{"this agent's key " + key + " was removed from the coordinator's agent key list",
                  true});
    EndSession(agent_id, "agent " + agent_id + "'s key was revoked", "agent_revoked", now);
  }
}

void AgentLoop::Tick(LoopClock::time_point now) {
  reports_.Flush(now);
  if (refusals_end_ != LoopClock::time_point{} && now >= refusals_end_) {
    refusals_end_ = {};
    schedule_needed_ = true;  // agents that refused a job may take one again
  }
  // A leader whose lease lapsed assigns nothing until it is renewed, or another leads.
  if (schedule_needed_ && (!options_.leading || options_.leading())) ScheduleJobs(now);
  if (now - last_checked_ > options_.heartbeat_interval / 4) {
    CatchUpWithStore(now);
    RecordUnrecordedLosses(now);
    CheckLiveness(now);
    CheckDeadlines(now);
    CheckQueueTimeouts(now);
    metrics_.SetLoad(PlatformLoads(pending_, running_, sessions_.all()));
    last_checked_ = now;
  }
}

void AgentLoop::RecordUnrecordedLosses(LoopClock::time_point now) {
  if (unrecorded_losses_.empty() || reports_.store_away(now)) return;
  std::map<uint64_t, UnrecordedLoss> losses;
  losses.swap(unrecorded_losses_);
  for (const auto& [job_id, loss] : losses) {
    RetryAttempt(loss.job, loss.agent_id, loss.error, loss.reason, now);
  }
}

void AgentLoop::CheckLiveness(LoopClock::time_point now) {
  auto limit = options_.heartbeat_interval * options_.missed_heartbeats;
  log_budget_.ForgetIdle(now);
  for (const std::string& agent_id : sessions_.Lost(now, limit)) {
    spdlog::warn("agent {} is lost (no heartbeat for {} ms); retrying its jobs", agent_id,
                 std::chrono::duration_cast<std::chrono::milliseconds>(limit).count());
    if (const AgentSession* session = sessions_.Find(agent_id)) {
      for (const PlatformOffer& offer : session->platforms) metrics_.CountAgentLost(offer.platform);
    }
    EndSession(agent_id, "agent " + agent_id + " was lost (missed heartbeats)", "agent_lost", now);
  }
}

void AgentLoop::CheckDeadlines(LoopClock::time_point now) {
  for (const RunningJob& running : ExpiredAttempts(running_, now)) {
    const std::string error = AttemptTimeoutError(running);
    const LogIds ids = IdsOf(running.job, running.agent_id);
    Result<ResultOutcome> outcome =
        store_.EndJob(running.job.job_id, running.job.attempt, "timed_out", error,
                      AttemptTimeoutBuildError(running));
    if (!outcome.ok()) {
      spdlog::error("{}cannot time out job {}: {}", ids, running.job.job_id,
                    outcome.status().message());
      continue;
    }
    spdlog::warn("{}job {} attempt {} on {} {}", ids, running.job.job_id, running.job.attempt,
                 running.agent_id, error);
    SendToAgent(running.agent_id, CancelMsg{running.job});
    metrics_.CountJob(running.platform, "timed_out");
    ReleaseJob(running.job.job_id);
    ApplyOutcome(*outcome, "timed_out", now);
  }
}

void AgentLoop::CheckQueueTimeouts(LoopClock::time_point now) {
  sightings_.Reset();
  for (const auto& [agent_id, session] : sessions_.all()) {
    if (!session->draining) sightings_.Note(session->platforms, now);
  }
  QueueRules rules{options_.queue_timeout, options_.emulation_fallback_wait, started_};
  QueueCheck check = CheckQueue(pending_, sightings_, rules, now);
  if (check.fallback_opened) schedule_needed_ = true;  // an emulated agent may take a job now
  for (const QueueExpiry& expiry : check.expired) {
    auto waiting = pending_.find(expiry.job_id);
    // Gone when an earlier expiry failed the same build and canceled this job with it.
    if (waiting == pending_.end()) continue;
    const QueuedJob job = waiting->second.job;
    const LogIds ids{.build = job.build_id, .job = job.job_id};
    const std::string platform = job.platform.ToString();
    Result<ResultOutcome> outcome =
        store_.EndJob(job.job_id, std::nullopt, "failed", "no agent for " + platform, expiry.error);
    if (!outcome.ok()) {
      spdlog::error("{}cannot fail job {}: {}", ids, job.job_id, outcome.status().message());
      continue;
    }
    spdlog::warn("{}job {}: {}", ids, job.job_id, expiry.error);
    pending_.erase(job.job_id);
    metrics_.CountJob(job.platform, "no_agent");
    ApplyOutcome(*outcome, "no_agent", now);
  }
  // Like scheduling, only while leading. After a start, agents come back within the
  // liveness window: until then "no connected agent" would be said of every job.
  if ((!options_.leading || options_.leading()) &&
      now - started_ >= options_.heartbeat_interval * options_.missed_heartbeats) {
    RecordWaitingReasons(rules);
  }
}

void AgentLoop::RecordWaitingReasons(const QueueRules& rules) {
  std::map<uint64_t, std::string> changed = ChangedWaitingReasons(pending_, sightings_, rules);
  if (changed.empty()) return;
  if (Status recorded = store_.SetWaitingReasons(changed); !recorded.ok()) {
    spdlog::warn("cannot record why {} job(s) wait: {}", changed.size(), recorded.message());
    return;  // the next check finds the same changes
  }
  for (auto& [job_id, reason] : changed) {
    WaitingJob& waiting = pending_.at(job_id);
    if (!reason.empty()) {
      spdlog::info("{}job {} waits: {}", LogIds{.build = waiting.job.build_id, .job = job_id},
                   job_id, reason);
    }
    waiting.reason = std::move(reason);
  }
}

void AgentLoop::ScheduleJobs(LoopClock::time_point now) {
  schedule_needed_ = false;
  if (pending_.empty()) return;
  std::vector<SchedulerAgent> agents =
      FreeAgents(sessions_.all(), warm_caches_, now, options_.cache_affinity_window);
  if (agents.empty()) return;  // every slot is busy: nothing to decide
  std::vector<JobAssignment> planned =
      PlanSchedulingPass(pending_, std::move(agents), cache_pushes_, options_.cache.ttl, now);
  if (planned.empty()) return;
  // One transaction for the whole pass: one commit however many slots freed up meanwhile.
  Result<std::vector<uint32_t>> attempts = store_.AssignJobs(planned);
  if (!attempts.ok()) {
    spdlog::error("cannot assign {} job(s): {}", planned.size(), attempts.status().message());
    schedule_needed_ = true;  // try again on the next turn of the loop
    return;
  }
  for (size_t i = 0; i < planned.size(); ++i) {
    const JobAssignment& assignment = planned[i];
    const uint32_t attempt = (*attempts)[i];
    auto waiting = pending_.find(assignment.job_id);
    if (attempt == 0) {
      pending_.erase(waiting);  // canceled or failed meanwhile
      continue;
    }
    const QueuedJob& job = waiting->second.job;
    auto secrets = secrets_.find(job.build_id);
    AssignMsg assign =
        MakeAssignMsg(job, attempt, options_.contexts,
                      secrets == secrets_.end() ? nullptr : secrets->second.get(), options_.cache);
    spdlog::info("{}job {} ({} of build {}) attempt {} -> agent {} ({})",
                 LogIds{.build = job.build_id,
                        .job = job.job_id,
                        .attempt = attempt,
                        .agent = assignment.agent_id},
                 job.job_id, job.platform.ToString(), job.build_id, attempt, assignment.agent_id,
                 assignment.placement);
    metrics_.ObserveQueueWait(job.platform,
                              std::chrono::duration<double>(now - waiting->second.since).count());
    running_[job.job_id] = {
        assign.job,
        assignment.agent_id,
        job.platform,
        now + std::chrono::seconds(job.spec->job_timeout_s),
        job.spec->job_timeout_s,
        now,
        waiting->second.repository,
        CacheOf(warm_caches_, assignment.agent_id, waiting->second.repository, job.platform, now,
                options_.cache_affinity_window,
                !assign.cache.from.empty() && CacheAge(cache_pushes_, waiting->second.repository,
                                                       job.platform, options_.cache.ttl, now))};
    AgentSession* session = sessions_.Find(assignment.agent_id);
    session->jobs[job.job_id] = ++session->assigns_sent;
    SendToAgent(assignment.agent_id, assign);
    sessions_.Publish(assignment.agent_id);
    pending_.erase(waiting);
  }
}

}  // namespace manifold
