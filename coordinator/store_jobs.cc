// The job transitions of the PostgreSQL store: assignment, phases, results, ending a job,
// canceling a build. The rules (fencing, retry or fail) are coordinator/job_rules.h's.
#include <nlohmann/json.hpp>
#include <tuple>

#include "coordinator/job_rules.h"
#include "coordinator/store.h"
#include "coordinator/store_pool.h"
#include "coordinator/store_rows.h"

namespace manifold {
namespace {

using nlohmann::json;
using namespace store_internal;

std::shared_ptr<const BuildSpec> LoadSpec(pqxx::transaction_base& tx, uint64_t build_id) {
  std::optional<BuildRecord> build = LoadBuild(tx, build_id);
  if (!build) throw std::runtime_error("build " + std::to_string(build_id) + " vanished");
  return std::make_shared<const BuildSpec>(build->spec);
}

// The job, locked for this transaction's decision about it; nullopt if there is none.
std::optional<JobRecord> LockJob(pqxx::work& tx, uint64_t job_id) {
  pqxx::result rows =
      tx.exec_params("SELECT " + kJobColumns + " FROM jobs WHERE id = $1 FOR UPDATE", job_id);
  if (rows.empty()) return std::nullopt;
  return ReadJob(rows[0]);
}

// Ends `job` as `state`, fails its build and cancels the build's other unfinished jobs.
void EndJobInTx(pqxx::transaction_base& tx, const JobRecord& job, const std::string& state,
                const std::string& job_error, const std::string& build_error,
                ResultOutcome& outcome) {
  tx.exec_params(
      "UPDATE jobs SET state = $2, error = $3, updated_at = now(), deadline = NULL "
      "WHERE id = $1",
      job.id, state, job_error);
  RecordEvent(tx, job.id, job.attempt, state, job.agent_id, job_error);
  pqxx::result failed = tx.exec_params(
      "UPDATE builds SET state = 'failed', error = $2, updated_at = now(), finished_at = now() "
      "WHERE id = $1 AND state IN ('queued', 'running') RETURNING id",
      job.build_id, build_error);
  outcome.build_failed = !failed.empty();
  for (const auto& row :
       tx.exec_params("UPDATE jobs SET state = 'canceled', updated_at = now(), deadline = NULL, "
                      "error = 'canceled: another platform of the build failed' "
                      "WHERE build_id = $1 AND state NOT IN " +
                          JobStateSqlList(kFinalJobStates) + " RETURNING " + kJobColumns,
                      job.build_id)) {
    JobRecord canceled = ReadJob(row);
    RecordEvent(tx, canceled.id, canceled.attempt, "canceled", canceled.agent_id,
                "another platform failed");
    outcome.to_cancel.push_back(std::move(canceled));
  }
}

// Phases (agent id, update), in the order they came, inside the caller's transaction: one
// statement for each job's run of phases (a zero-time build sends accepted, building and
// pushing at once), each fenced as SetJobPhase is. The answer for each phase: false if
// fenced.
std::vector<bool> SetPhasesInTx(pqxx::work& tx,
                                const std::vector<std::pair<std::string, JobUpdateMsg>>& phases) {
  struct Run {
    std::vector<size_t> members;  // positions in `phases`
    std::string events;           // the states that become events, as a text[] literal
  };
  std::vector<Run> runs;
  std::map<std::tuple<std::string, uint64_t, uint32_t>, size_t> run_of;
  for (size_t i = 0; i < phases.size(); ++i) {
    const auto& [agent_id, update] = phases[i];
    auto [it, added] =
        run_of.try_emplace({agent_id, update.job.job_id, update.job.attempt}, runs.size());
    if (added) runs.emplace_back();
    Run& run = runs[it->second];
    run.members.push_back(i);
    if (update.phase != JobPhase::kAccepted) {
      run.events +=
          std::string(run.events.empty() ? "" : ",") + std::string(PhaseJobState(update.phase));
    }
  }
  std::vector<bool> current(phases.size());
  for (const Run& run : runs) {
    const auto& [agent_id, first] = phases[run.members.front()];
    JobPhase last = phases[run.members.back()].second.phase;
    bool moved = tx.exec_prepared1(kSetPhases.name, first.job.job_id, first.job.attempt, agent_id,
                                   std::string(PhaseJobState(last)), "{" + run.events + "}")[0]
                     .as<int>() > 0;
    for (size_t i : run.members) current[i] = moved;
  }
  return current;
}

// A succeeded result inside the caller's transaction (kRecordSuccess), with the build's
// jobs read for the merge when it was the build's last.
ResultOutcome RecordSuccessInTx(pqxx::work& tx, const std::string& agent_id,
                                const JobResultMsg& result) {
  ResultOutcome outcome;
  pqxx::result rows =
      tx.exec_prepared(kRecordSuccess.name, result.job.job_id, result.job.attempt, agent_id,
                       result.image.digest, result.image.media_type, result.image.size);
  if (rows.empty()) return outcome;  // stale: a retry or a cancel has superseded this attempt
  const pqxx::row& row = rows[0];
  outcome.current = true;
  outcome.build_id = row[row.size() - 1].as<uint64_t>();
  if (row[0].is_null()) return outcome;  // another job of the build has not succeeded yet
  BuildRecord build = ReadBuild(row);
  for (const auto& job : tx.exec_prepared(kJobsOfBuild.name, build.id)) {
    build.jobs.push_back(ReadJob(job));
  }
  outcome.to_merge = std::move(build);
  return outcome;
}

// One job result inside the caller's transaction; the caller commits.
ResultOutcome RecordResultInTx(pqxx::work& tx, const std::string& agent_id,
                               const JobResultMsg& result, uint32_t max_retries) {
  if (result.succeeded) return RecordSuccessInTx(tx, agent_id, result);
  ResultOutcome outcome;
  std::optional<JobRecord> locked = LockJob(tx, result.job.job_id);
  if (!locked) return outcome;
  const JobRecord& job = *locked;
  outcome.build_id = job.build_id;
  if (!IsCurrentAttempt(job, result.job, agent_id)) {
    return outcome;  // stale: a retry or a cancel has superseded this attempt
  }
  outcome.current = true;

  FailureCause cause = CauseOf(result);
  FailureVerdict verdict = JudgeFailure(job, cause, max_retries);
  if (verdict != FailureVerdict::kFailBuild) {
    bool retry = verdict == FailureVerdict::kRetry;
    tx.exec_params(
        "UPDATE jobs SET state = 'pending', error = $2, updated_at = now(), deadline = NULL, "
        "retries = retries + $3, placement = '' WHERE id = $1",
        job.id, result.error, retry ? 1 : 0);
    RecordEvent(tx, job.id, job.attempt, retry ? "retry" : "requeued", agent_id, result.error);
    outcome.requeued = QueuedJob{job.id, job.build_id, job.platform, LoadSpec(tx, job.build_id)};
    return outcome;
  }

  EndJobInTx(tx, job, "failed", result.error,
             BuildFailureMessage(job, cause, agent_id, result.error), outcome);
  return outcome;
}

}  // namespace

Result<uint32_t> Store::AssignJob(uint64_t job_id, const std::string& agent_id, bool emulated,
                                  const std::string& placement) {
  Result<std::vector<uint32_t>> attempts = AssignJobs({{job_id, agent_id, emulated, placement}});
  if (!attempts.ok()) return attempts.status();
  if ((*attempts)[0] == 0) {
    return Status::FailedPrecondition("job " + std::to_string(job_id) + " is not pending");
  }
  return (*attempts)[0];
}

Result<std::vector<uint32_t>> Store::AssignJobs(const std::vector<JobAssignment>& assignments) {
  using Attempts = std::vector<uint32_t>;
  json wanted = json::array();
  for (const JobAssignment& a : assignments) {
    wanted.push_back({{"job_id", a.job_id},
                      {"agent_id", a.agent_id},
                      {"emulated", a.emulated},
                      {"placement", a.placement}});
  }
  return pool_->Write<Attempts>("assign jobs", [&](pqxx::work& tx) -> Result<Attempts> {
    std::map<uint64_t, uint32_t> assigned;
    for (const auto& row : tx.exec_prepared(kAssignJobs.name, wanted.dump())) {
      assigned[row[0].as<uint64_t>()] = row[1].as<uint32_t>();
    }
    Attempts attempts;
    for (const JobAssignment& a : assignments) {
      auto it = assigned.find(a.job_id);
      attempts.push_back(it == assigned.end() ? 0 : it->second);
    }
    return attempts;
  });
}

Status Store::SetWaitingReasons(const std::map<uint64_t, std::string>& reasons) {
  json wanted = json::array();
  for (const auto& [job_id, reason] : reasons) {
    wanted.push_back({{"job_id", job_id}, {"reason", reason}});
  }
  // Only a hint for people: the next change of reason writes again, so no flush is awaited.
  return pool_
      ->Write<bool>(
          "record why jobs wait",
          [&](pqxx::work& tx) -> Result<bool> {
            tx.exec_params(
                "UPDATE jobs SET placement = w.reason FROM jsonb_to_recordset($1::jsonb) AS "
                "w(job_id bigint, reason text) WHERE jobs.id = w.job_id AND "
                "jobs.state = 'pending' AND jobs.placement <> w.reason",
                wanted.dump());
            return true;
          },
          Pool::Flush::kNoFlushWait)
      .status();
}

Result<bool> Store::SetJobPhase(const JobRef& job, const std::string& agent_id, JobPhase phase) {
  std::vector<bool> current;
  Result<std::vector<ResultOutcome>> recorded =
      RecordJobReports({{agent_id, JobUpdateMsg{job, phase}}}, {}, 0, &current);
  if (!recorded.ok()) return recorded.status();
  return static_cast<bool>(current.at(0));
}

Result<ResultOutcome> Store::RecordJobResult(const std::string& agent_id,
                                             const JobResultMsg& result, uint32_t max_retries) {
  Result<std::vector<ResultOutcome>> outcomes = RecordJobResults({{agent_id, result}}, max_retries);
  if (!outcomes.ok()) return outcomes.status();
  return std::move((*outcomes)[0]);
}

Result<std::vector<ResultOutcome>> Store::RecordJobResults(
    const std::vector<std::pair<std::string, JobResultMsg>>& results, uint32_t max_retries) {
  return RecordJobReports({}, results, max_retries, nullptr);
}

Result<std::vector<ResultOutcome>> Store::RecordJobReports(
    const std::vector<std::pair<std::string, JobUpdateMsg>>& phases,
    const std::vector<std::pair<std::string, JobResultMsg>>& results, uint32_t max_retries,
    std::vector<bool>* phases_current) {
  using Outcomes = std::vector<ResultOutcome>;
  return pool_->Write<Outcomes>(
      "record job reports",
      [&](pqxx::work& tx) -> Result<Outcomes> {
        std::vector<bool> current = SetPhasesInTx(tx, phases);
        Outcomes outcomes;
        for (const auto& [agent_id, result] : results) {
          outcomes.push_back(RecordResultInTx(tx, agent_id, result, max_retries));
        }
        if (phases_current != nullptr) *phases_current = std::move(current);
        return outcomes;
      },
      results.empty() ? Pool::Flush::kNoFlushWait : Pool::Flush::kWait);
}

Result<ResultOutcome> Store::EndJob(uint64_t job_id, std::optional<uint32_t> attempt,
                                    const std::string& state, const std::string& job_error,
                                    const std::string& build_error) {
  return pool_->Write<ResultOutcome>("end job", [&](pqxx::work& tx) -> Result<ResultOutcome> {
    ResultOutcome outcome;
    std::optional<JobRecord> job = LockJob(tx, job_id);
    if (!job) return outcome;
    outcome.build_id = job->build_id;
    if (IsFinalJobState(job->state) || (attempt && *attempt != job->attempt)) return outcome;
    outcome.current = true;
    EndJobInTx(tx, *job, state, job_error, build_error, outcome);
    return outcome;
  });
}

Result<std::vector<JobRecord>> Store::CancelBuild(uint64_t build_id) {
  using Jobs = std::vector<JobRecord>;
  return pool_->Write<Jobs>("cancel build", [&](pqxx::work& tx) -> Result<Jobs> {
    pqxx::result build =
        tx.exec_params("SELECT state FROM builds WHERE id = $1 FOR UPDATE", build_id);
    if (build.empty()) return Status::NotFound("no build " + std::to_string(build_id));
    std::string state = build[0][0].as<std::string>();
    if (state != "queued" && state != "running") {
      return Status::FailedPrecondition(
          "build " + std::to_string(build_id) + " is " + state +
          (state == "merging" ? "; its index is being pushed" : " and cannot be canceled"));
    }
    tx.exec_params(
        "UPDATE builds SET state = 'canceled', error = 'canceled by request', "
        "updated_at = now(), finished_at = now() WHERE id = $1",
        build_id);
    Jobs held;
    for (const auto& row :
         tx.exec_params("UPDATE jobs SET state = 'canceled', updated_at = now(), deadline = NULL, "
                        "error = 'canceled by request' WHERE build_id = $1 AND state NOT IN " +
                            JobStateSqlList(kFinalJobStates) + " RETURNING " + kJobColumns,
                        build_id)) {
      JobRecord job = ReadJob(row);
      RecordEvent(tx, job.id, job.attempt, "canceled", job.agent_id, "canceled by request");
      if (job.attempt > 0 && !job.agent_id.empty()) held.push_back(std::move(job));
    }
    if (announcing_) NotifyWork(tx, origin_, "cancel", build_id);
    return held;
  });
}

}  // namespace manifold
