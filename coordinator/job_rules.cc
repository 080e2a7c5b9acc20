#include "coordinator/job_rules.h"

#include <algorithm>

#include "common/strings.h"

namespace manifold {

bool IsHeldJobState(std::string_view state) {
  return std::ranges::find(kHeldJobStates, state) != std::end(kHeldJobStates);
}

bool IsFinalJobState(std::string_view state) {
  return std::ranges::find(kFinalJobStates, state) != std::end(kFinalJobStates);
}

std::string JobStateSqlList(const std::string_view* states, size_t count) {
  std::vector<std::string> quoted;
  for (size_t i = 0; i < count; ++i) quoted.push_back("'" + std::string(states[i]) + "'");
  return "(" + Join(quoted, ", ") + ")";
}

bool IsCurrentAttempt(const JobRecord& job, const JobRef& ref, std::string_view agent_id) {
  return job.id == ref.job_id && job.attempt == ref.attempt && job.agent_id == agent_id &&
         IsHeldJobState(job.state);
}

std::string_view PhaseJobState(JobPhase phase) {
  switch (phase) {
    case JobPhase::kAccepted:
      return "assigned";
    case JobPhase::kBuilding:
      return "building";
    case JobPhase::kPushing:
      return "pushing";
  }
  return "assigned";
}

FailureCause CauseOf(const JobResultMsg& result) {
  if (result.refused) return FailureCause::kRefused;
  return result.retryable ? FailureCause::kInfrastructure : FailureCause::kBuild;
}

FailureVerdict JudgeFailure(const JobRecord& job, FailureCause cause, uint32_t max_retries) {
  switch (cause) {
    case FailureCause::kBuild:
      return FailureVerdict::kFailBuild;
    case FailureCause::kRefused:
      return FailureVerdict::kRequeue;
    case FailureCause::kInfrastructure:
      return job.retries < max_retries ? FailureVerdict::kRetry : FailureVerdict::kFailBuild;
  }
  return FailureVerdict::kFailBuild;
}

std::string BuildFailureMessage(const JobRecord& job, FailureCause cause, std::string_view agent_id,
                                std::string_view error) {
  std::string message = job.platform.ToString() + " failed on agent " + std::string(agent_id) +
                        " after " + std::to_string(job.attempt) +
                        (job.attempt == 1 ? " attempt" : " attempts");
  if (cause == FailureCause::kInfrastructure) {
    message += ", its " + std::to_string(job.retries) + (job.retries == 1 ? " retry" : " retries") +
               " after faults outside the build used up (--max-retries)";
  }
  return message + ": " + std::string(error);
}

}  // namespace manifold
