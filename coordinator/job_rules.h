// The lifecycle rules of a job, as pure functions: which messages about a job are current
// (fencing), which phase moves are allowed, and whether a failed attempt is retried or
// fails the build.
//
// They are written once, here. The PostgreSQL store applies them to the rows it reads, and
// builds the WHERE clauses of its one-statement transitions from the same state lists
// (JobStateSqlList), so the in-memory store of the tests and the real one cannot drift
// apart; one rule-level test suite runs against both. Stateless and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/messages.h"
#include "coordinator/build.h"

namespace manifold {

// The states in which an agent holds the job's current attempt.
inline constexpr std::string_view kHeldJobStates[] = {"assigned", "building", "pushing"};
// The states a job never leaves.
inline constexpr std::string_view kFinalJobStates[] = {"succeeded", "failed", "timed_out",
                                                       "canceled"};

bool IsHeldJobState(std::string_view state);
bool IsFinalJobState(std::string_view state);

// "('assigned', 'building', 'pushing')": a state list as SQL, for the store's WHERE clauses.
std::string JobStateSqlList(const std::string_view* states, size_t count);
template <size_t N>
std::string JobStateSqlList(const std::string_view (&states)[N]) {
  return JobStateSqlList(states, N);
}

// Fencing: a message from `agent_id` about `ref` may change `job` only while the job is
// held at exactly that attempt by exactly that agent. Anything else (a late result of a
// retried attempt, a lost agent that came back, a job canceled meanwhile) changes nothing.
bool IsCurrentAttempt(const JobRecord& job, const JobRef& ref, std::string_view agent_id);

// The job state a phase report moves a held job to.
std::string_view PhaseJobState(JobPhase phase);

// Why an attempt ended without an image. The table (docs/ARCHITECTURE.md, "The failure
// table") is JudgeFailure's:
//   kBuild           the build itself failed (a step, the Dockerfile, the context): the
//                    same inputs fail the same way, so the build fails at once.
//   kRefused         the agent had no free slot (the coordinator's view of it was stale):
//                    the job goes back to the queue and uses nothing.
//   kInfrastructure  a fault outside the build: the agent was lost, restarted, drained or
//                    cut off, or the registry or the network failed. The job goes back to
//                    the queue for another agent, using one of its --max-retries, which are
//                    its own: a job that kills every agent it lands on fails with that
//                    reason instead of circling the fleet until the job timeout.
// A database outage is not in the table: it ends no attempt (what could not be written is
// kept and written when the database answers).
enum class FailureCause { kBuild, kRefused, kInfrastructure };
FailureCause CauseOf(const JobResultMsg& result);

// What a failed attempt does: kRequeue puts the job back as it was, kRetry puts it back
// using one of its retries, kFailBuild ends the job and fails its build.
enum class FailureVerdict { kRequeue, kRetry, kFailBuild };
FailureVerdict JudgeFailure(const JobRecord& job, FailureCause cause, uint32_t max_retries);

// The build's error when `job`'s failure on `agent_id` fails it: "linux/arm64 failed on
// agent a1 after 3 attempts: <error>", and for kInfrastructure why it was not retried.
std::string BuildFailureMessage(const JobRecord& job, FailureCause cause, std::string_view agent_id,
                                std::string_view error);

}  // namespace manifold
