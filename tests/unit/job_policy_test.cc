#include "agent/job_policy.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace manifold {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kGiB = 1 << 30;

JobPolicy Policy() {
  JobPolicy policy = DefaultJobPolicy();
  policy.defaults.memory_bytes = 2 * kGiB;
  policy.maximums.memory_bytes = 8 * kGiB;
  policy.maximums.pids = 8192;
  return policy;
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(JobPolicyTest, UnsetLimitsTakeTheAgentsDefaults) {
  Result<ResolvedJob> job = ResolveJob(Policy(), "", {}, JobLimits{});
  ASSERT_TRUE(job.ok()) << job.status().message();
  EXPECT_EQ(job->limits, (JobLimits{.memory_bytes = 2 * kGiB, .pids = 4096}));
  EXPECT_EQ(job->network, "");
}

TEST(JobPolicyTest, ABuildMayAskUpToTheMaximum) {
  Result<ResolvedJob> job =
      ResolveJob(Policy(), "none", {}, JobLimits{.memory_bytes = 8 * kGiB, .cpu_millis = 64000});
  ASSERT_TRUE(job.ok()) << job.status().message();
  EXPECT_EQ(job->limits, (JobLimits{.memory_bytes = 8 * kGiB, .cpu_millis = 64000, .pids = 4096}));
  EXPECT_EQ(job->network, "none");
}

TEST(JobPolicyTest, AskingOverTheMaximumNamesWhatWasAskedTheMaximumAndTheAgentFlag) {
  Result<ResolvedJob> job = ResolveJob(Policy(), "", {}, JobLimits{.memory_bytes = 9 * kGiB});
  ASSERT_FALSE(job.ok());
  EXPECT_FALSE(job.status().retryable());
  EXPECT_EQ(job.status().message(),
            "the build asks for 9 GiB of memory (--job-memory), over this agent's maximum of 8 "
            "GiB; ask for at most that, or raise the agent's --max-job-memory");
  Result<ResolvedJob> pids = ResolveJob(Policy(), "", {}, JobLimits{.pids = 10000});
  ASSERT_FALSE(pids.ok());
  EXPECT_TRUE(Contains(pids.status().message(), "10000 processes of pids (--job-pids)"));
  EXPECT_TRUE(Contains(pids.status().message(), "--max-job-pids"));
}

TEST(JobPolicyTest, HostNetworkNeedsTheEntitlementOnTheBuildAndTheAgent) {
  Result<ResolvedJob> no_allow = ResolveJob(Policy(), "host", {}, JobLimits{});
  ASSERT_FALSE(no_allow.ok());
  EXPECT_TRUE(Contains(no_allow.status().message(), "--allow network.host"));

  Result<ResolvedJob> refused = ResolveJob(Policy(), "host", {"network.host"}, JobLimits{});
  ASSERT_FALSE(refused.ok());
  EXPECT_FALSE(refused.status().retryable());
  EXPECT_TRUE(Contains(refused.status().message(),
                       "start the agent with --allow-insecure-entitlement network.host"));

  JobPolicy allowing = Policy();
  allowing.allowed_entitlements = {"network.host"};
  Result<ResolvedJob> allowed = ResolveJob(allowing, "host", {"network.host"}, JobLimits{});
  ASSERT_TRUE(allowed.ok()) << allowed.status().message();
  EXPECT_EQ(allowed->network, "host");
}

TEST(JobPolicyTest, UnknownNetworksAndEntitlementsAreRefused) {
  EXPECT_FALSE(ResolveJob(Policy(), "bridge", {}, JobLimits{}).ok());
  EXPECT_FALSE(ResolveJob(Policy(), "", {"security.insecure"}, JobLimits{}).ok());
  Result<ResolvedJob> named_default = ResolveJob(Policy(), "default", {}, JobLimits{});
  ASSERT_TRUE(named_default.ok());
  EXPECT_EQ(named_default->network, "");
}

TEST(JobPolicyTest, APolicyWithADefaultOverItsMaximumIsRefused) {
  EXPECT_TRUE(CheckJobPolicy(Policy()).ok());
  JobPolicy over = Policy();
  over.defaults.memory_bytes = 16 * kGiB;
  EXPECT_EQ(CheckJobPolicy(over).message(),
            "--job-memory must be set and at most --max-job-memory (8 GiB), got 16 GiB");
  JobPolicy unlimited_under_maximum = Policy();
  unlimited_under_maximum.maximums.cpu_millis = 4000;
  EXPECT_FALSE(CheckJobPolicy(unlimited_under_maximum).ok());
  JobPolicy unknown = Policy();
  unknown.allowed_entitlements = {"security.insecure"};
  EXPECT_FALSE(CheckJobPolicy(unknown).ok());
}

TEST(JobPolicyTest, ParsesFlagValues) {
  EXPECT_EQ(*ParseLimit(JobLimit::kMemory, "512m"), 512 * kMiB);
  EXPECT_EQ(*ParseLimit(JobLimit::kMemory, "4G"), 4 * kGiB);
  EXPECT_EQ(*ParseLimit(JobLimit::kDisk, "1.5gb"), 3 * kGiB / 2);
  EXPECT_EQ(*ParseLimit(JobLimit::kDisk, "10Gi"), 10 * kGiB);
  EXPECT_EQ(*ParseLimit(JobLimit::kMemory, "1073741824"), kGiB);
  EXPECT_EQ(*ParseLimit(JobLimit::kMemory, "0"), 0u);
  EXPECT_EQ(*ParseLimit(JobLimit::kCpus, "1.5"), 1500u);
  EXPECT_EQ(*ParseLimit(JobLimit::kCpus, ".25"), 250u);
  EXPECT_EQ(*ParseLimit(JobLimit::kCpus, "0.3333"), 333u);
  EXPECT_EQ(*ParseLimit(JobLimit::kPids, "64"), 64u);
  for (const char* bad : {"", "g", "4x", "-1", "1.2.3", "99999999999t"}) {
    EXPECT_FALSE(ParseLimit(JobLimit::kMemory, bad).ok()) << bad;
  }
  EXPECT_FALSE(ParseLimit(JobLimit::kCpus, "0.0001").ok());
  EXPECT_FALSE(ParseLimit(JobLimit::kPids, "1.5").ok());
}

TEST(JobPolicyTest, MessagesSayTheLimitAndTheFlagsThatRaiseIt) {
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(300 * kMiB), "300 MiB");
  EXPECT_EQ(FormatBytes(100), "100 bytes");
  EXPECT_EQ(FormatCpus(1500), "1.5");
  EXPECT_EQ(FormatCpus(2000), "2");
  EXPECT_EQ(FormatCpus(250), "0.25");
  EXPECT_EQ(DescribeLimits(JobLimits{.memory_bytes = 64 * kMiB, .pids = 64}),
            "memory 64 MiB, cpus unlimited, pids 64 processes, disk unlimited");
  EXPECT_EQ(LimitReachedMessage(JobLimit::kPids, 64),
            "the job ran out of processes: a build step could not start a process at the job's "
            "process limit of 64 processes; ask for more with `manifold build --job-pids` (up "
            "to the agent's --max-job-pids), or raise the agent's --job-pids default");
  EXPECT_TRUE(Contains(LimitReachedMessage(JobLimit::kMemory, 64 * kMiB), "64 MiB"));
  EXPECT_TRUE(Contains(LimitReachedMessage(JobLimit::kDisk, 32 * kMiB), "--job-disk"));
}

}  // namespace
}  // namespace manifold
