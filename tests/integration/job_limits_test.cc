// Per-job limits on a real farm (ops/farm.sh, real buildah with --isolation oci): one agent
// whose defaults are small limits (--job-pids, --job-memory, --job-disk through the
// MANIFOLD_* environment), and hostile Dockerfiles that run into each. Each such build
// fails at once (not retried) with an error that names the limit and the flag that raises
// it, leaves no cgroup or mount of its job behind, and the next normal build on the same
// agent succeeds. Covers cgroup v1 (this host and CI); cgroup v2 is not exercised here.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "common/digest.h"
#include "common/http_client.h"
#include "tests/support/farm.h"

namespace manifold::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
namespace fs = std::filesystem;

class JobLimitsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    FarmOptions options;
    options.agents = {"amd64-1:linux/amd64"};
    options.env = {{"MANIFOLD_JOB_PIDS", "64"},
                   {"MANIFOLD_JOB_MEMORY", "64m"},
                   {"MANIFOLD_JOB_CPUS", "1"},
                   {"MANIFOLD_JOB_DISK", "32m"}};
    farm_ = StartSuiteFarm(options);
  }
  static void TearDownTestSuite() { farm_.reset(); }

  void SetUp() override { ASSERT_NE(farm_, nullptr) << "the farm did not come up"; }
  void TearDown() override {
    if (HasFailure() && farm_ != nullptr) {
      std::cerr << "---- amd64-1 log ----\n" << farm_->LogTail("amd64-1") << "\n";
    }
  }

  // Submits a build of `dockerfile` (context: one small file) for the agent's platform and
  // returns it once it reached a final state (null JSON if it did not in time).
  static json Build(const std::string& dockerfile, const std::string& tag) {
    Result<uint64_t> id = farm_->SubmitBuild(dockerfile, tag);
    EXPECT_TRUE(id.ok()) << id.status().message();
    return farm_->FinishedBuild(id.ok() ? *id : 0, milliseconds(120000));
  }

  // A build that must fail at a limit: once (no retry), with `expected` in its error.
  static void ExpectFailsAtLimit(const std::string& dockerfile, const std::string& tag,
                                 const std::string& expected) {
    json build = Build(dockerfile, tag);
    ASSERT_EQ(build.value("state", ""), "failed") << build.dump();
    std::string error = build.value("error", "");
    EXPECT_NE(error.find(expected), std::string::npos) << error;
    ASSERT_EQ(build["jobs"].size(), 1u);
    EXPECT_EQ(build["jobs"][0]["attempt"], 1) << "a job failed at its limit is not retried";
    ExpectNothingLeft();
    json normal = Build(kNormal, tag + "-after");
    EXPECT_EQ(normal.value("state", ""), "succeeded") << normal.dump();
  }

  // No job cgroup of this agent, and no mount or file in its jobs' dir, once its job ended.
  static void ExpectNothingLeft() {
    std::string work = farm_->dir() + "/farm/agents/amd64-1/work";
    std::ifstream mounts("/proc/self/mountinfo");
    std::string all((std::istreambuf_iterator<char>(mounts)), std::istreambuf_iterator<char>());
    EXPECT_EQ(all.find(work + "/jobs/"), std::string::npos) << "a job's file system is mounted";
    std::error_code ec;
    EXPECT_TRUE(fs::is_empty(work + "/jobs", ec)) << work << "/jobs holds leftovers";
    // The agent's jobs' root (job_cgroup.h) in each hierarchy has no job's cgroup left.
    std::string root = "manifold-agent-" + DigestHex(Sha256Digest(work)).substr(0, 12);
    for (const char* hierarchy : {"pids", "memory", "cpu", "freezer", "unified"}) {
      std::string dir = std::string("/sys/fs/cgroup/") + hierarchy + "/" + root;
      for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
        EXPECT_FALSE(entry.is_directory()) << entry.path() << " is left";
      }
    }
  }

  static constexpr const char* kNormal = "FROM busybox\nRUN echo normal > /normal.txt\n";
  static std::unique_ptr<Farm> farm_;
};

std::unique_ptr<Farm> JobLimitsTest::farm_;

TEST_F(JobLimitsTest, AForkBombRunsIntoTheProcessLimit) {
  ExpectFailsAtLimit(
      "FROM busybox\nRUN bomb() { bomb | bomb & }; bomb; sleep 5; exit 1\n", "limits/fork-bomb",
      "ran out of processes: a build step could not start a process at the job's process limit "
      "of 64 processes; ask for more with `manifold build --job-pids`");
}

TEST_F(JobLimitsTest, AllocatingPastTheMemoryLimitIsKilled) {
  // tail keeps the whole newline-free input in memory.
  ExpectFailsAtLimit("FROM busybox\nRUN head -c 300m /dev/zero | tail > /dev/null\n",
                     "limits/memory",
                     "ran out of memory: a build step was killed at the job's "
                     "memory limit of 64 MiB; ask for more with `manifold build --job-memory`");
}

TEST_F(JobLimitsTest, AnImageLargerThanTheJobsDiskDoesNotFitItsWorkDir) {
  // The step's 48 MiB land in the agent's layer store; the image's layout, which the job
  // writes into its work dir, does not fit its 32 MiB.
  ExpectFailsAtLimit("FROM busybox\nRUN head -c 48m /dev/urandom > /big\n", "limits/disk",
                     "ran out of disk: its work dir (context and build files) is full at the "
                     "job's disk limit of 32 MiB; ask for more with `manifold build --job-disk`");
}

}  // namespace
}  // namespace manifold::test
