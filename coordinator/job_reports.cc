#include "coordinator/job_reports.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/log.h"

namespace manifold {

namespace {
constexpr auto kRetryInterval = std::chrono::milliseconds(500);
}  // namespace

uint64_t JobReports::QueuedBytes(const std::string& agent_id, const LogChunkMsg& chunk) {
  // What a queued chunk holds in memory, so that a flood of tiny chunks is bounded too.
  return sizeof(Log) + agent_id.size() + chunk.data.size();
}

void JobReports::AddPhase(const std::string& agent_id, const JobUpdateMsg& update,
                          LoopClock::time_point at) {
  if (phases_.size() < kMaxQueued) phases_.push_back({agent_id, update, at});
}

void JobReports::AddResult(const std::string& agent_id, const JobResultMsg& result,
                           LoopClock::time_point now) {
  if (!logs_.empty() || store_away(now)) {
    spdlog::warn("{}result of job {} attempt {} held until the database answers",
                 LogIds{.job = result.job.job_id, .attempt = result.job.attempt, .agent = agent_id},
                 result.job.job_id, result.job.attempt);
  }
  if (results_.size() < kMaxQueued) results_.emplace_back(agent_id, result);
}

void JobReports::AddLog(const std::string& agent_id, LogChunkMsg chunk, LoopClock::time_point now) {
  const uint64_t bytes = chunk.data.size();
  if (!flow_.Fits(logs_bytes_, QueuedBytes(agent_id, chunk))) {
    // Sent before its agent heard to hold (or by one that does not listen).
    metrics_.CountDroppedMessage("log_backlog");
    metrics_.CountLogBytes("dropped", bytes);
    flow_.Dropped(chunk.job, bytes);
  } else {
    chunk.data.insert(0, flow_.TakeNotice(chunk.job));
    logs_bytes_ += QueuedBytes(agent_id, chunk);
    logs_.push_back({std::move(chunk), agent_id});
  }
  if (flow_.Hold(agent_id, logs_bytes_)) {
    spdlog::warn("agent {}: holding its build output: {} bytes of output wait for the database",
                 agent_id, logs_bytes_);
    metrics_.CountLogHold();
    handlers_.log_flow(agent_id, true);
  }
  // While the database is away, chunks wait for the next retry, not a connection each.
  if (!store_away(now)) StoreLogs(now);
}

void JobReports::ResumeHeldAgents() {
  std::vector<std::string> agents = flow_.Resume(logs_bytes_);
  if (!agents.empty()) {
    spdlog::info("the database has caught up with build output: {} agent(s) send it again",
                 agents.size());
  }
  for (const std::string& agent_id : agents) handlers_.log_flow(agent_id, false);
}

void JobReports::Flush(LoopClock::time_point now) {
  metrics_.SetLogBacklog(logs_bytes_);
  if (store_away(now)) return;  // they stay queued
  StoreLogs(now);
  StoreResults(now);
}

void JobReports::StoreLogs(LoopClock::time_point now) {
  while (!logs_.empty()) {
    const Log& log = logs_.front();
    Result<LogAppend> stored =
        store_.AppendLog(log.chunk.job, log.agent_id, log.chunk.seq, log.chunk.data, log_cap_);
    if (!stored.ok() && stored.status().retryable()) {  // the database is away
      retry_at_ = now + kRetryInterval;
      return;
    }
    if (!stored.ok()) spdlog::warn("log chunk lost: {}", stored.status().message());
    if (stored.ok()) metrics_.CountLogBytes("cut", stored->cut_bytes);
    if (stored.ok() && !stored->current) {
      metrics_.CountDroppedMessage("not_assigned");
      spdlog::warn("dropped a log chunk from agent {} for job {} attempt {}, not assigned to it",
                   log.agent_id, log.chunk.job.job_id, log.chunk.job.attempt);
    }
    logs_bytes_ -= QueuedBytes(log.agent_id, log.chunk);
    logs_.pop_front();
  }
  ResumeHeldAgents();
}

void JobReports::StoreResults(LoopClock::time_point now) {
  while ((!results_.empty() || !phases_.empty()) && logs_.empty()) {
    size_t count = std::min<size_t>(results_.size(), 1000);
    std::vector<std::pair<std::string, JobResultMsg>> batch(results_.begin(),
                                                            results_.begin() + count);
    // Phases are progress that the next phase or the result supersedes: a phase whose
    // transaction fails is not tried again.
    std::vector<Phase> phases;
    phases.swap(phases_);
    std::vector<std::pair<std::string, JobUpdateMsg>> updates;
    for (const Phase& phase : phases) updates.emplace_back(phase.agent_id, phase.update);
    std::vector<bool> current;
    Result<std::vector<ResultOutcome>> outcomes =
        store_.RecordJobReports(updates, batch, max_retries_, &current);
    if (outcomes.ok()) {
      for (size_t i = 0; i < phases.size(); ++i) handlers_.phase_recorded(phases[i], current[i]);
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
            batch[0].second.job.job_id, batch[0].second.job.attempt, results_.size() - 1,
            outcomes.status().message());
      }
      retry_at_ = now + kRetryInterval;
      return;
    }
    if (!outcomes.ok()) {
      // One result the database refuses must not hold back the others: one at a time.
      while (!results_.empty()) {
        const auto& [agent_id, result] = results_.front();
        if (!StoreResult(agent_id, result, now)) {
          retry_at_ = now + kRetryInterval;
          return;
        }
        results_.pop_front();
      }
      return;
    }
    for (size_t i = 0; i < count; ++i) {
      handlers_.result_recorded(batch[i].first, batch[i].second, (*outcomes)[i], now);
      results_.pop_front();
    }
  }
}

bool JobReports::StoreResult(const std::string& agent_id, const JobResultMsg& result,
                             LoopClock::time_point now) {
  Result<ResultOutcome> outcome = store_.RecordJobResult(agent_id, result, max_retries_);
  if (!outcome.ok()) {
    // Not acknowledged: the agent keeps the result and sends it again, and it is retried
    // here as soon as the database answers.
    spdlog::error(
        "{}cannot record result of job {}: {}",
        LogIds{.job = result.job.job_id, .attempt = result.job.attempt, .agent = agent_id},
        result.job.job_id, outcome.status().message());
    return !outcome.status().retryable();
  }
  handlers_.result_recorded(agent_id, result, *outcome, now);
  return true;
}

}  // namespace manifold
