// manifold_desired_agents as an autoscaler needs it (issue 22), from the loop's view of
// jobs and sessions (PlatformLoads) through the formula (Metrics::DesiredAgents): it counts
// jobs waiting for a native agent under --emulation fallback, whatever emulated agents
// are connected; a job moving between waiting and running does not change it; and it is 0
// with no work, so the autoscaler's minimum decides.
#include <gtest/gtest.h>

#include "coordinator/agent_sessions.h"
#include "coordinator/metrics.h"

namespace manifold {
namespace {

const Platform kArm64 = ParsePlatform("linux/arm64").value();
const Platform kAmd64 = ParsePlatform("linux/amd64").value();

class DesiredAgentsTest : public ::testing::Test {
 protected:
  void Connect(const std::string& id, std::vector<PlatformOffer> platforms, uint32_t slots) {
    auto session = std::make_unique<AgentSession>();
    session->agent_id = id;
    session->platforms = std::move(platforms);
    session->slots = slots;
    sessions_[id] = std::move(session);
  }
  void Wait(uint64_t job_id, const Platform& platform) {
    pending_[job_id].job = QueuedJob{job_id, job_id, platform, nullptr};
  }
  void Run(uint64_t job_id, const std::string& agent_id) {
    Platform platform = pending_.at(job_id).job.platform;
    pending_.erase(job_id);
    RunningJob& running = running_[job_id];
    running.job = JobRef{job_id, 1};
    running.agent_id = agent_id;
    running.platform = platform;
    sessions_.at(agent_id)->jobs[job_id] = 1;
  }
  void Requeue(uint64_t job_id) {
    const RunningJob& running = running_.at(job_id);
    sessions_.at(running.agent_id)->jobs.erase(job_id);
    Wait(job_id, running.platform);
    running_.erase(job_id);
  }
  int Desired(const Platform& platform) {
    auto load = PlatformLoads(pending_, running_, sessions_);
    return load.count(platform) ? Metrics::DesiredAgents(load.at(platform), 1.0) : 0;
  }

  WaitingJobs pending_;
  RunningJobs running_;
  std::map<std::string, std::unique_ptr<AgentSession>> sessions_;
};

TEST_F(DesiredAgentsTest, JobsWaitingForANativeAgentCountWhateverEmulatedSlotsAreFree) {
  // A 1-slot native arm64 agent, busy, and an 8-slot amd64 host emulating arm64, idle:
  // four arm64 jobs wait for a native agent (--emulation fallback, the wait not over).
  Connect("arm64-1", {{kArm64, false}}, 1);
  Connect("amd64-1", {{kAmd64, false}, {kArm64, true}}, 8);
  Wait(1, kArm64);
  Run(1, "arm64-1");
  for (uint64_t job = 2; job <= 5; ++job) Wait(job, kArm64);
  // Five 1-slot native agents clear them; the host's eight emulated slots are not agents
  // the autoscaler adds.
  EXPECT_EQ(Desired(kArm64), 5);
  EXPECT_EQ(Desired(kAmd64), 0);
}

TEST_F(DesiredAgentsTest, WithOnlyEmulatedAgentsTheirSlotsDecide) {
  // A one-host farm: every arm64 agent is emulated, two slots each.
  Connect("arm64-1", {{kArm64, true}}, 2);
  Connect("arm64-2", {{kArm64, true}}, 2);
  for (uint64_t job = 1; job <= 5; ++job) Wait(job, kArm64);
  EXPECT_EQ(Desired(kArm64), 3);
}

TEST_F(DesiredAgentsTest, AJobMovingBetweenWaitingAndRunningKeepsTheCount) {
  Connect("arm64-1", {{kArm64, false}}, 1);
  Connect("arm64-2", {{kArm64, false}}, 1);
  for (uint64_t job = 1; job <= 3; ++job) Wait(job, kArm64);
  EXPECT_EQ(Desired(kArm64), 3);
  Run(1, "arm64-1");
  EXPECT_EQ(Desired(kArm64), 3);
  Run(2, "arm64-2");
  EXPECT_EQ(Desired(kArm64), 3);
  Requeue(1);  // its agent was lost, or refused it
  EXPECT_EQ(Desired(kArm64), 3);
  // Draining agents still count as the same kind.
  sessions_.at("arm64-2")->draining = true;
  EXPECT_EQ(Desired(kArm64), 3);
}

TEST_F(DesiredAgentsTest, NoWorkGivesZeroWhateverIsConnected) {
  Connect("arm64-1", {{kArm64, false}}, 4);
  Connect("amd64-1", {{kAmd64, false}, {kArm64, true}}, 8);
  EXPECT_EQ(Desired(kArm64), 0);
  Wait(1, kArm64);
  Run(1, "arm64-1");
  EXPECT_EQ(Desired(kArm64), 1);
  running_.erase(1);  // it ended
  sessions_.at("arm64-1")->jobs.erase(1);
  EXPECT_EQ(Desired(kArm64), 0);
}

}  // namespace
}  // namespace manifold
