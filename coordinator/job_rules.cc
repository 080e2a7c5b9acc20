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

FailureVerdict JudgeFailure(const JobRecord& job, bool retryable, uint32_t max_attempts) {
  return retryable && job.attempt < max_attempts ? FailureVerdict::kRetry
                                                 : FailureVerdict::kFailBuild;
}

std::string BuildFailureMessage(const JobRecord& job, std::string_view agent_id,
                                std::string_view error) {
  return job.platform.ToString() + " failed on agent " + std::string(agent_id) + " after " +
         std::to_string(job.attempt) + (job.attempt == 1 ? " attempt: " : " attempts: ") +
         std::string(error);
}

}  // namespace manifold
