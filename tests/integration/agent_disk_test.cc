// The agent's disk on a real farm (ops/farm.sh, real buildah): one agent with two slots
// whose container storage is a tmpfs of its own, with a cap (--cache-max-bytes) a little
// above what two cached images take and a free-space floor (--min-free-disk). The agent
// prunes the least recently used cache image to its cap, but not one a running job
// builds from; a RUN step that writes past the floor is stopped, fails once (not
// retried) naming the floor's flag, leaves no working container, and the next build
// succeeds; while the disk is below the floor, jobs are refused (the coordinator keeps
// them queued) until there is room.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/digest.h"
#include "tests/support/farm.h"
#include "tests/support/subprocess.h"
#include "tests/support/wait.h"

namespace manifold::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kAgent = "amd64-1";

class AgentDiskTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    FarmOptions options;
    options.agents = {std::string(kAgent) + ":linux/amd64"};
    options.env = {{"MANIFOLD_FARM_SLOTS", "2"},
                   {"MANIFOLD_CACHE_MAX_BYTES", "44m"},
                   {"MANIFOLD_MIN_FREE_DISK", "64m"}};
    farm_ = StartSuiteFarm(options);
    if (farm_ == nullptr) return;
    // The storage on a file system of its own, small enough for the floor to matter.
    Status stopped = farm_->Stop(kAgent);
    if (stopped.ok() && ::mount("tmpfs", Graph().c_str(), "tmpfs", 0, "size=192m") != 0) {
      stopped = Status::Internal(std::string("mounting a tmpfs: ") + std::strerror(errno));
    }
    mounted_ = stopped.ok();
    if (stopped.ok()) stopped = farm_->Start(kAgent);
    if (!stopped.ok()) {
      std::cerr << "cannot put the agent's storage on a tmpfs: " << stopped.message() << "\n";
      TearDownTestSuite();
    }
  }
  static void TearDownTestSuite() {
    if (farm_ != nullptr) (void)farm_->Stop(kAgent);
    if (mounted_) ::umount2(Graph().c_str(), MNT_DETACH);
    mounted_ = false;
    farm_.reset();
  }

  void SetUp() override { ASSERT_NE(farm_, nullptr) << "the farm did not come up"; }
  void TearDown() override {
    if (HasFailure()) std::cerr << "---- agent log ----\n" << farm_->LogTail(kAgent) << "\n";
  }

  static std::string AgentDir() { return farm_->dir() + "/farm/agents/" + kAgent; }
  static std::string Graph() { return AgentDir() + "/storage/graph"; }

  // Starts a build of `dockerfile` for repository `tag` and returns its id (0 if refused).
  static uint64_t Submit(const std::string& dockerfile, const std::string& tag) {
    Result<uint64_t> id = farm_->SubmitBuild(dockerfile, tag);
    EXPECT_TRUE(id.ok()) << id.status().message();
    return id.ok() ? *id : 0;
  }
  static json Build(const std::string& dockerfile, const std::string& tag) {
    return farm_->FinishedBuild(Submit(dockerfile, tag), milliseconds(120000));
  }

  // `buildah SUBCOMMAND --json` on the agent's storage.
  static json Buildah(const std::string& subcommand) {
    CommandResult result = RunCommand({"buildah", subcommand, "--json"}, seconds(30),
                                      {{"CONTAINERS_STORAGE_CONF", AgentDir() + "/storage.conf"}});
    EXPECT_EQ(result.exit_code, 0) << result.output;
    return json::parse(result.output, nullptr, false);
  }
  // Whether the storage holds the cache image of repository `tag` (agent/job_runner.cc
  // names it).
  static bool HasCacheOf(const std::string& tag) {
    std::string name =
        "localhost/manifold-cache-" +
        DigestHex(Sha256Digest(farm_->registry() + "/" + tag + " linux/amd64")).substr(0, 24) +
        ":latest";
    for (const json& image : Buildah("images")) {
      for (const json& each : image.value("names", json::array())) {
        if (each == name) return true;
      }
    }
    return false;
  }
  // A counter or gauge of the agent's /metrics, -1 if absent.
  static double Metric(const std::string& name) {
    Result<std::string> text = farm_->Metrics(kAgent);
    if (!text.ok()) return -1;
    size_t at = text->find("\n" + name + " ");
    return at == std::string::npos ? -1 : std::stod(text->substr(at + name.size() + 2));
  }

  static std::unique_ptr<Farm> farm_;
  static bool mounted_;
};

std::unique_ptr<Farm> AgentDiskTest::farm_;
bool AgentDiskTest::mounted_ = false;

TEST_F(AgentDiskTest, PrunesTheLeastRecentlyUsedToItsCapButNotWhatARunningJobUses) {
  // Each writes a file of its own name, so that no build takes another's step from the
  // cache.
  for (const char* name : {"a", "b"}) {
    std::string repo = std::string("disk/") + name;
    json built =
        Build("FROM busybox\nRUN head -c 16m /dev/urandom > /" + std::string(name) + "\n", repo);
    ASSERT_EQ(built.value("state", ""), "succeeded") << built.dump();
  }
  ASSERT_EQ(Metric("manifold_agent_image_store_pruned_images_total"), 0)
      << "two cached images fit under the cap";
  // A build of disk/a runs from its cache image while disk/c's build goes over the cap:
  // disk/a's image is the least recently used, but in use, so disk/b's goes.
  uint64_t running = Submit("FROM busybox\nRUN sleep 15\n", "disk/a");
  ASSERT_TRUE(WaitFor(
      [&] {
        Result<json> build = farm_->GetBuild(running);
        return build.ok() && (*build)["jobs"].size() == 1 &&
               (*build)["jobs"][0].value("state", "") == "building";
      },
      milliseconds(60000)));
  json built = Build("FROM busybox\nRUN head -c 16m /dev/urandom > /c\n", "disk/c");
  ASSERT_EQ(built.value("state", ""), "succeeded") << built.dump();
  ASSERT_TRUE(WaitFor([&] { return Metric("manifold_agent_image_store_pruned_images_total") >= 1; },
                      milliseconds(30000)))
      << "nothing was pruned; the storage holds " << Metric("manifold_agent_image_store_bytes");
  EXPECT_FALSE(HasCacheOf("disk/b")) << "the least recently used image not in use stays";
  EXPECT_TRUE(HasCacheOf("disk/a")) << "an image a running job builds from went";
  EXPECT_TRUE(HasCacheOf("disk/c")) << "the newest image went";
  Result<json> still = farm_->GetBuild(running);
  ASSERT_TRUE(still.ok());
  ASSERT_EQ(still->value("state", ""), "running")
      << "the job using disk/a ended before the prune, which then proved nothing";
  EXPECT_GT(Metric("manifold_agent_image_store_pruned_bytes_total"), 16 << 20);
  EXPECT_LE(Metric("manifold_agent_image_store_bytes"), 44 << 20);
  json after = farm_->FinishedBuild(running, milliseconds(120000));
  EXPECT_EQ(after.value("state", ""), "succeeded") << after.dump();
}

TEST_F(AgentDiskTest, AStepWritingPastTheFreeSpaceFloorIsStoppedAndItsLayerRemoved) {
  // About 140 MiB of the 192 MiB are free: 112 MiB more leave less than the 64 MiB floor.
  json build = Build("FROM busybox\nRUN head -c 112m /dev/zero > /big && sleep 30\n", "disk/floor");
  ASSERT_EQ(build.value("state", ""), "failed") << build.dump();
  std::string error = build.value("error", "");
  EXPECT_NE(error.find("the job stopped at the agent's free-space floor"), std::string::npos)
      << error;
  EXPECT_NE(error.find("under the floor of 64 MiB (the agent's --min-free-disk)"),
            std::string::npos)
      << error;
  ASSERT_EQ(build["jobs"].size(), 1u);
  EXPECT_EQ(build["jobs"][0]["attempt"], 1) << "a job stopped at the floor is not retried";
  json containers = Buildah("containers");  // null when there are none
  EXPECT_TRUE(containers.is_null() || containers.empty())
      << "the stopped step's container is left: " << containers.dump();
  json normal = Build("FROM busybox\nRUN echo normal > /normal.txt\n", "disk/after-floor");
  EXPECT_EQ(normal.value("state", ""), "succeeded") << normal.dump();
}

TEST_F(AgentDiskTest, BelowTheFloorItRefusesJobsUntilThereIsRoom) {
  // A file that is no image takes the disk below the floor: pruning cannot help.
  struct statvfs stats = {};
  ASSERT_EQ(::statvfs(Graph().c_str(), &stats), 0);
  off_t fill = static_cast<off_t>(stats.f_bavail * stats.f_frsize) - (32 << 20);
  ASSERT_GT(fill, 0);
  std::string filler = Graph() + "/filler";
  int fd = ::open(filler.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(::posix_fallocate(fd, 0, fill), 0);
  ::close(fd);
  uint64_t id = Submit("FROM busybox\nRUN echo refused first > /refused.txt\n", "disk/refused");
  EXPECT_TRUE(WaitFor(
      [&] {
        std::string log = farm_->Log(kAgent);
        return log.find("under its free-space floor of 64 MiB (--min-free-disk)") !=
               std::string::npos;
      },
      milliseconds(30000)))
      << "the agent took a job below its floor";
  Result<json> waiting = farm_->GetBuild(id);
  ASSERT_TRUE(waiting.ok());
  std::string state = waiting->value("state", "");
  EXPECT_TRUE(state == "queued" || state == "running") << "refused jobs wait: " << state;
  std::remove(filler.c_str());
  json build = farm_->FinishedBuild(id, milliseconds(120000));
  EXPECT_EQ(build.value("state", ""), "succeeded") << build.dump();
}

}  // namespace
}  // namespace manifold::test
