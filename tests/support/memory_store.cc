#include "tests/support/memory_store.h"

#include <algorithm>
#include <ctime>

#include "coordinator/job_rules.h"

namespace manifold::test {
namespace {

std::string Rfc3339(std::chrono::system_clock::time_point at) {
  std::time_t seconds = std::chrono::system_clock::to_time_t(at);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

int64_t UnixMs(std::chrono::system_clock::time_point at) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count();
}

bool BuildIsQueuedOrRunning(const BuildRecord& build) {
  return build.state == "queued" || build.state == "running";
}

}  // namespace

Result<BuildRecord> MemoryStore::CreateBuild(const BuildSpec& spec) {
  std::lock_guard lock(mutex_);
  if (Status s = CheckAvailable("create build"); !s.ok()) return s;
  Build build;
  build.created = Clock::now();
  build.spec = std::make_shared<const BuildSpec>(spec);
  build.record.id = next_build_id_++;
  build.record.spec = spec;
  build.record.state = "queued";
  build.record.created_at = build.record.updated_at = Rfc3339(build.created);
  for (const Platform& platform : spec.platforms) {
    JobRecord job;
    job.id = next_job_id_++;
    job.build_id = build.record.id;
    job.platform = platform;
    job.state = "pending";
    AddEvent(job, 0, "pending", "", "submitted");
    build.job_ids.push_back(job.id);
    jobs_[job.id] = std::move(job);
  }
  auto [it, added] = builds_.emplace(build.record.id, std::move(build));
  return Snapshot(it->second, false);
}

Result<BuildRecord> MemoryStore::GetBuild(uint64_t id) {
  std::lock_guard lock(mutex_);
  if (Status s = CheckAvailable("get build"); !s.ok()) return s;
  auto it = builds_.find(id);
  if (it == builds_.end()) return Status::NotFound("no build " + std::to_string(id));
  return Snapshot(it->second, true);
}

Result<std::vector<LogChunkRecord>> MemoryStore::ListLogs(uint64_t build_id, int64_t after,
                                                          int limit) {
  std::lock_guard lock(mutex_);
  if (Status s = CheckAvailable("list logs"); !s.ok()) return s;
  std::vector<LogChunkRecord> chunks;
  auto it = builds_.find(build_id);
  if (it == builds_.end()) return chunks;
  for (const auto& [job_id, chunk] : it->second.logs) {
    if (chunk.seq <= after || static_cast<int>(chunks.size()) >= limit) continue;
    chunks.push_back(chunk);
    const JobLog& log = job_logs_[job_id];
    if (chunk.seq == log.seam_seq) chunks.back().cut_before = log.cut_bytes;
  }
  return chunks;
}

std::optional<std::string> MemoryStore::AgentState(const std::string& agent_id) {
  std::lock_guard lock(mutex_);
  auto it = agent_states_.find(agent_id);
  if (it == agent_states_.end()) return std::nullopt;
  return it->second;
}

void MemoryStore::SetAvailable(bool available) {
  std::lock_guard lock(mutex_);
  available_ = available;
}

void MemoryStore::FailCompleteBuild(int times) {
  std::lock_guard lock(mutex_);
  complete_build_failures_ = times;
}

void MemoryStore::LoseNextAnswer() {
  std::lock_guard lock(mutex_);
  lose_next_answer_ = true;
}

uint64_t MemoryStore::unknown_outcomes() const {
  std::lock_guard lock(mutex_);
  return unknown_outcomes_;
}

Result<std::vector<QueuedJob>> MemoryStore::PendingJobs() {
  std::lock_guard lock(mutex_);
  if (Status s = CheckAvailable("load pending jobs"); !s.ok()) return s;
  std::vector<QueuedJob> queued;
  for (const auto& [id, job] : jobs_) {
    const Build& build = builds_.at(job.build_id);
    if (job.state != "pending" || !BuildIsQueuedOrRunning(build.record)) continue;
    queued.push_back({job.id, job.build_id, job.platform, build.spec});
  }
  return queued;
}

Result<std::vector<QueuedJob>> MemoryStore::PendingJobsOf(const std::vector<uint64_t>& build_ids) {
  Result<std::vector<QueuedJob>> all = PendingJobs();
  if (!all.ok()) return all;
  std::erase_if(*all, [&](const QueuedJob& job) {
    return std::find(build_ids.begin(), build_ids.end(), job.build_id) == build_ids.end();
  });
  return all;
}

Result<std::vector<JobRecord>> MemoryStore::ActiveJobs() {
  std::lock_guard lock(mutex_);
  if (Status s = CheckAvailable("load active jobs"); !s.ok()) return s;
  std::vector<JobRecord> active;
  for (const auto& [id, job] : jobs_) {
    if (!IsHeldJobState(job.state)) continue;
    active.push_back(job);
    active.back().events.clear();
  }
  return active;
}

Result<std::vector<BuildRecord>> MemoryStore::BuildsToMerge() {
  std::lock_guard lock(mutex_);
  if (Status s = CheckAvailable("load merging builds"); !s.ok()) return s;
  std::vector<BuildRecord> merging;
  for (const auto& [id, build] : builds_) {
    if (build.record.state == "merging") merging.push_back(Snapshot(build, false));
  }
  return merging;
}

Result<std::vector<uint32_t>> MemoryStore::AssignJobs(
    const std::vector<JobAssignment>& assignments) {
  std::lock_guard lock(mutex_);
  if (Status s = CheckAvailable("assign jobs"); !s.ok()) return s;
  // As the store's foreign key: a job goes only to an agent that said hello.
  for (const JobAssignment& a : assignments) {
    if (!agent_states_.contains(a.agent_id)) {
      return Status::Internal("database error during assign jobs: no agent " + a.agent_id);
    }
  }
  Clock::time_point now = Clock::now();
  std::map<uint64_t, uint32_t> assigned;  // as the one statement of the store: a job moves once
  for (const JobAssignment& a : assignments) {
    auto it = jobs_.find(a.job_id);
    if (it == jobs_.end() || it->second.state != "pending") continue;
    JobRecord& job = it->second;
    Build& build = builds_.at(job.build_id);
    job.state = "assigned";
    ++job.attempt;
    job.agent_id = a.agent_id;
    job.emulated = a.emulated;
    job.placement = a.placement;
    job.error.clear();
    job.deadline_unix_ms = UnixMs(now + std::chrono::seconds(build.spec->job_timeout_s));
    AddEvent(job, job.attempt, "assigned", a.agent_id, a.placement);
    if (build.record.state == "queued") {
      build.record.state = "running";
      build.record.updated_at = Rfc3339(now);
    }
    assigned[job.id] = job.attempt;
  }
  std::vector<uint32_t> attempts;
  for (const JobAssignment& a : assignments) {
    auto it = assigned.find(a.job_id);
    attempts.push_back(it == assigned.end() ? 0 : it->second);
  }
  if (Status lost = AnswerLost("assign jobs"); !lost.ok()) return lost;
  return attempts;
}

Status MemoryStore::SetWaitingReasons(const std::map<uint64_t, std::string>& reasons) {
  std::lock_guard lock(mutex_);
  if (Status s = CheckAvailable("record why jobs wait"); !s.ok()) return s;
  for (const auto& [job_id, reason] : reasons) {
    auto it = jobs_.find(job_id);
    if (it != jobs_.end() && it->second.state == "pending") it->second.placement = reason;
  }
  return Status::Ok();
}

Result<ResultOutcome> MemoryStore::RecordJobResult(const std::string& agent_id,
                                                   const JobResultMsg& result,
                                                   uint32_t max_retries) {
  Result<std::vector<ResultOutcome>> outcomes =
      RecordJobReports({}, {{agent_id, result}}, max_retries, nullptr);
  if (!outcomes.ok()) return outcomes.status();
  return std::move((*outcomes)[0]);
}

Result<std::vector<ResultOutcome>> MemoryStore::RecordJobReports(
    const std::vector<std::pair<std::string, JobUpdateMsg>>& phases,
    const std::vector<std::pair<std::string, JobResultMsg>>& results, uint32_t max_retries,
    std::vector<bool>* phases_current) {
  std::lock_guard lock(mutex_);
  if (Status s = CheckAvailable("record job reports"); !s.ok()) return s;
  std::vector<bool> current;
  for (const auto& [agent_id, update] : phases) current.push_back(SetPhase(agent_id, update));
  std::vector<ResultOutcome> outcomes;
  for (const auto& [agent_id, result] : results) {
    outcomes.push_back(RecordResult(agent_id, result, max_retries));
  }
  if (Status lost = AnswerLost("record job reports"); !lost.ok()) return lost;
  if (phases_current != nullptr) *phases_current = std::move(current);
  return outcomes;
}

Result<ResultOutcome> MemoryStore::EndJob(uint64_t job_id, std::optional<uint32_t> attempt,
                                          const std::string& state, const std::string& job_error,
                                          const std::string& build_error) {
  std::lock_guard lock(mutex_);
  if (Status s = CheckAvailable("end job"); !s.ok()) return s;
  ResultOutcome outcome;
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return outcome;
  JobRecord& job = it->second;
  outcome.build_id = job.build_id;
  if (IsFinalJobState(job.state) || (attempt && *attempt != job.attempt)) return outcome;
  outcome.current = true;
  EndJobLocked(job, state, job_error, build_error, outcome);
  if (Status lost = AnswerLost("end job"); !lost.ok()) return lost;
  return outcome;
}

Result<LogAppend> MemoryStore::AppendLog(const JobRef& job, const std::string& agent_id,
                                         uint64_t chunk_seq, const std::string& data,
                                         const LogCap& cap) {
  std::lock_guard lock(mutex_);
  if (Status s = CheckAvailable("append log"); !s.ok()) return s;
  auto it = jobs_.find(job.job_id);
  // As the store's fence: the attempt's agent, whatever the job's state since; a job never
  // assigned has no agent to match.
  if (it == jobs_.end() || it->second.agent_id.empty() || it->second.agent_id != agent_id ||
      it->second.attempt != job.attempt) {
    return LogAppend{};
  }
  if (!chunks_seen_.insert({job.job_id, job.attempt, chunk_seq}).second) {
    return LogAppend{true, 0};
  }
  auto& logs = builds_.at(it->second.build_id).logs;
  const int64_t seq = next_log_seq_++;
  logs.push_back({job.job_id, {seq, it->second.platform.ToString(), job.attempt, data}});
  JobLog& log = job_logs_[job.job_id];
  if (AddToHead(cap, log.span, data.size()) && log.span.head_full) log.head_seq = seq;
  if (!TailDueForCut(cap, log.span)) return LogAppend{true, 0};
  std::vector<int64_t> tail_seqs;
  std::vector<uint64_t> tail_sizes;
  for (const auto& [job_id, chunk] : logs) {
    if (job_id != job.job_id || chunk.seq <= log.head_seq) continue;
    tail_seqs.push_back(chunk.seq);
    tail_sizes.push_back(chunk.data.size());
  }
  size_t count = ChunksToCut(cap, tail_sizes);
  if (count == 0) return LogAppend{true, 0};
  uint64_t cut = 0;
  for (size_t i = 0; i < count; ++i) cut += tail_sizes[i];
  std::erase_if(logs, [&](const auto& entry) {
    return entry.first == job.job_id && entry.second.seq > log.head_seq &&
           entry.second.seq <= tail_seqs[count - 1];
  });
  log.span.tail_bytes -= cut;
  log.cut_bytes += cut;
  log.seam_seq = tail_seqs[count];
  return LogAppend{true, cut};
}

Result<double> MemoryStore::CompleteBuild(uint64_t build_id, const std::string& index_digest,
                                          const std::string& index_media_type) {
  std::lock_guard lock(mutex_);
  if (Status s = CheckAvailable("complete build"); !s.ok()) return s;
  if (complete_build_failures_ > 0) {
    --complete_build_failures_;
    return Status::Unavailable("database unavailable during complete build: FailCompleteBuild");
  }
  auto it = builds_.find(build_id);
  if (it == builds_.end() || it->second.record.state != "merging") return 0.0;
  Build& build = it->second;
  build.record.index_digest = index_digest;
  build.record.index_media_type = index_media_type;
  Finish(build, "succeeded");
  return std::chrono::duration<double>(*build.finished - build.created).count();
}

Status MemoryStore::FailBuild(uint64_t build_id, const std::string& error) {
  std::lock_guard lock(mutex_);
  if (Status s = CheckAvailable("fail build"); !s.ok()) return s;
  auto it = builds_.find(build_id);
  if (it != builds_.end() &&
      (BuildIsQueuedOrRunning(it->second.record) || it->second.record.state == "merging")) {
    it->second.record.error = error;
    Finish(it->second, "failed");
  }
  return Status::Ok();
}

Status MemoryStore::UpsertAgent(const HelloMsg& hello) {
  std::lock_guard lock(mutex_);
  if (Status s = CheckAvailable("register agent"); !s.ok()) return s;
  agent_states_[hello.agent_id] = "online";
  return Status::Ok();
}

Status MemoryStore::SetAgentState(const std::string& agent_id, const std::string& state) {
  std::lock_guard lock(mutex_);
  if (Status s = CheckAvailable("update agent"); !s.ok()) return s;
  auto it = agent_states_.find(agent_id);
  if (it != agent_states_.end()) it->second = state;
  return Status::Ok();
}

Status MemoryStore::RecordCachePush(const std::string& repository, const Platform& platform,
                                    const std::string& cache_ref) {
  std::lock_guard lock(mutex_);
  if (Status s = CheckAvailable("record cache push"); !s.ok()) return s;
  cache_pushes_[{repository, platform}] = {repository, platform, cache_ref, UnixMs(Clock::now())};
  return Status::Ok();
}

Result<std::vector<CachePush>> MemoryStore::CachePushes() {
  std::lock_guard lock(mutex_);
  if (Status s = CheckAvailable("read cache pushes"); !s.ok()) return s;
  std::vector<CachePush> pushes;
  for (const auto& [key, push] : cache_pushes_) pushes.push_back(push);
  return pushes;
}

Status MemoryStore::CheckAvailable(const char* what) const {
  if (available_) return Status::Ok();
  return Status::Unavailable(std::string("database unavailable during ") + what +
                             ": the memory store is set unavailable");
}

Status MemoryStore::AnswerLost(const char* what) {
  if (!lose_next_answer_) return Status::Ok();
  lose_next_answer_ = false;
  available_ = false;
  ++unknown_outcomes_;
  return Status::Unavailable(std::string("the connection to the database broke while committing ") +
                             what + ": LoseNextAnswer");
}

BuildRecord MemoryStore::Snapshot(const Build& build, bool with_events) const {
  BuildRecord record = build.record;
  for (uint64_t id : build.job_ids) {
    record.jobs.push_back(jobs_.at(id));
    if (!with_events) record.jobs.back().events.clear();
  }
  return record;
}

void MemoryStore::AddEvent(JobRecord& job, uint32_t attempt, const std::string& state,
                           const std::string& agent_id, const std::string& detail) {
  job.events.push_back({attempt, state, agent_id, Rfc3339(Clock::now()), detail});
}

void MemoryStore::Finish(Build& build, const std::string& state) {
  build.finished = Clock::now();
  build.record.state = state;
  build.record.updated_at = Rfc3339(*build.finished);
}

bool MemoryStore::SetPhase(const std::string& agent_id, const JobUpdateMsg& update) {
  auto it = jobs_.find(update.job.job_id);
  if (it == jobs_.end() || !IsCurrentAttempt(it->second, update.job, agent_id)) return false;
  it->second.state = std::string(PhaseJobState(update.phase));
  // Accepted moves nothing an observer would see; the store records no event for it.
  if (update.phase != JobPhase::kAccepted) {
    AddEvent(it->second, update.job.attempt, it->second.state, agent_id, "");
  }
  return true;
}

ResultOutcome MemoryStore::RecordResult(const std::string& agent_id, const JobResultMsg& result,
                                        uint32_t max_retries) {
  ResultOutcome outcome;
  auto it = jobs_.find(result.job.job_id);
  if (result.succeeded) {
    if (it == jobs_.end() || !IsCurrentAttempt(it->second, result.job, agent_id)) return outcome;
    return RecordSuccess(it->second, agent_id, result);
  }
  if (it == jobs_.end()) return outcome;
  JobRecord& job = it->second;
  outcome.build_id = job.build_id;
  if (!IsCurrentAttempt(job, result.job, agent_id)) return outcome;
  outcome.current = true;
  FailureCause cause = CauseOf(result);
  FailureVerdict verdict = JudgeFailure(job, cause, max_retries);
  if (verdict != FailureVerdict::kFailBuild) {
    bool retry = verdict == FailureVerdict::kRetry;
    job.state = "pending";
    job.error = result.error;
    job.deadline_unix_ms = 0;
    job.placement.clear();
    if (retry) ++job.retries;
    AddEvent(job, job.attempt, retry ? "retry" : "requeued", agent_id, result.error);
    outcome.requeued = QueuedJob{job.id, job.build_id, job.platform, builds_.at(job.build_id).spec};
    return outcome;
  }
  EndJobLocked(job, "failed", result.error, BuildFailureMessage(job, cause, agent_id, result.error),
               outcome);
  return outcome;
}

ResultOutcome MemoryStore::RecordSuccess(JobRecord& job, const std::string& agent_id,
                                         const JobResultMsg& result) {
  ResultOutcome outcome;
  outcome.current = true;
  outcome.build_id = job.build_id;
  job.state = "succeeded";
  job.manifest = result.image;
  job.deadline_unix_ms = 0;
  AddEvent(job, result.job.attempt, "succeeded", agent_id, result.image.digest);
  Build& build = builds_.at(job.build_id);
  bool all_succeeded = std::all_of(build.job_ids.begin(), build.job_ids.end(),
                                   [&](uint64_t id) { return jobs_.at(id).state == "succeeded"; });
  if (!all_succeeded || !BuildIsQueuedOrRunning(build.record)) return outcome;
  build.record.state = "merging";
  build.record.updated_at = build.record.merge_started_at = Rfc3339(Clock::now());
  outcome.to_merge = Snapshot(build, false);
  return outcome;
}

void MemoryStore::EndJobLocked(JobRecord& job, const std::string& state,
                               const std::string& job_error, const std::string& build_error,
                               ResultOutcome& outcome) {
  job.state = state;
  job.error = job_error;
  job.deadline_unix_ms = 0;
  AddEvent(job, job.attempt, state, job.agent_id, job_error);
  Build& build = builds_.at(job.build_id);
  outcome.build_failed = BuildIsQueuedOrRunning(build.record);
  if (outcome.build_failed) {
    build.record.error = build_error;
    Finish(build, "failed");
  }
  for (uint64_t id : build.job_ids) {
    JobRecord& other = jobs_.at(id);
    if (IsFinalJobState(other.state)) continue;
    other.state = "canceled";
    other.error = "canceled: another platform of the build failed";
    other.deadline_unix_ms = 0;
    AddEvent(other, other.attempt, "canceled", other.agent_id, "another platform failed");
    outcome.to_cancel.push_back(other);
    outcome.to_cancel.back().events.clear();
  }
}

}  // namespace manifold::test
