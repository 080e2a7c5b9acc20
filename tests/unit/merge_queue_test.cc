// The merge queue's retries against the in-memory store and a push that answers as told:
// a registry failure is retried and then fails the build, but once the index is pushed
// only the store's completion is retried, and the build succeeds.
#include "coordinator/merge_queue.h"

#include <gtest/gtest.h>

#include <atomic>

#include "common/digest.h"
#include "tests/support/memory_store.h"
#include "tests/support/wait.h"

namespace manifold {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kTimeout{10000};

class MergeQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HelloMsg hello;
    hello.agent_id = "a1";
    ASSERT_TRUE(store_.UpsertAgent(hello).ok());
  }

  // A build for linux/amd64 whose job succeeded: merging, as the loop hands it over.
  BuildRecord Merging() {
    BuildSpec spec;
    spec.platforms = {*ParsePlatform("linux/amd64")};
    spec.tags = {"127.0.0.1:5000/app:latest"};
    spec.context_digest = Sha256Digest("context");
    spec.dockerfile = "FROM busybox\n";
    Result<BuildRecord> created = store_.CreateBuild(spec);
    EXPECT_TRUE(created.ok()) << created.status().message();
    const uint64_t job = created->jobs.at(0).id;
    Result<std::vector<uint32_t>> attempts = store_.AssignJobs({{job, "a1", false, "native"}});
    EXPECT_TRUE(attempts.ok()) << attempts.status().message();
    ImageDescriptor image{"application/vnd.oci.image.manifest.v1+json", Sha256Digest("manifest"),
                          761};
    Result<ResultOutcome> outcome =
        store_.RecordJobResult("a1", {{job, attempts->at(0)}, true, image, "", false}, 3);
    EXPECT_TRUE(outcome.ok() && outcome->to_merge.has_value());
    return *outcome->to_merge;
  }

  // Runs the queue on `build` with `push` until the build leaves merging; its final record.
  BuildRecord MergeUntilDone(const BuildRecord& build, MergeQueue::PushIndex push) {
    MergeQueue::Options options;
    options.workers = 1;
    options.attempts = 2;
    options.first_backoff = milliseconds(5);
    MergeQueue queue(store_, metrics_, std::move(push), options);
    queue.Start();
    queue.Request(build);
    BuildRecord now;
    EXPECT_TRUE(test::WaitFor(
        [&] {
          Result<BuildRecord> got = store_.GetBuild(build.id);
          if (got.ok()) now = *got;
          return got.ok() && now.state != "merging";
        },
        kTimeout));
    queue.Stop();
    return now;
  }

  test::MemoryStore store_;
  Metrics metrics_;
};

// More failed completions than the queue has attempts for pushes: the index is pushed
// once, the completion retried until the store takes it, and the build succeeds.
TEST_F(MergeQueueTest, AfterTheIndexIsPushedOnlyTheCompletionIsRetried) {
  BuildRecord build = Merging();
  store_.FailCompleteBuild(6);
  std::atomic<int> pushes{0};
  BuildRecord done = MergeUntilDone(build, [&](const BuildRecord&) -> Result<PushedIndex> {
    ++pushes;
    return PushedIndex{Sha256Digest("index"), "application/vnd.oci.image.index.v1+json"};
  });
  EXPECT_EQ(done.state, "succeeded") << done.error;
  EXPECT_EQ(done.index_digest, Sha256Digest("index"));
  EXPECT_EQ(pushes, 1);
}

// A registry that stays unavailable fails the build once the attempts are spent.
TEST_F(MergeQueueTest, ALastingRegistryFailureFailsTheBuild) {
  BuildRecord build = Merging();
  std::atomic<int> pushes{0};
  BuildRecord done = MergeUntilDone(build, [&](const BuildRecord&) -> Result<PushedIndex> {
    ++pushes;
    return Status::Unavailable("registry 127.0.0.1:5000: HTTP 503");
  });
  EXPECT_EQ(done.state, "failed");
  EXPECT_NE(done.error.find("HTTP 503"), std::string::npos) << done.error;
  EXPECT_EQ(pushes, 2);
}

// The loop hands in every merging build again when it reads its view back from the
// store: a build queued, merging or merged already is pushed once.
TEST_F(MergeQueueTest, ABuildHandedInAgainIsPushedOnce) {
  BuildRecord first = Merging();
  BuildRecord second = Merging();
  std::atomic<int> first_pushes{0};
  std::atomic<bool> release{false};
  MergeQueue::Options options;
  options.workers = 1;
  MergeQueue queue(
      store_, metrics_,
      [&](const BuildRecord& build) -> Result<PushedIndex> {
        if (build.id == first.id) {
          ++first_pushes;
          EXPECT_TRUE(test::WaitFor([&] { return release.load(); }, kTimeout));
        }
        return PushedIndex{Sha256Digest("index"), "application/vnd.oci.image.index.v1+json"};
      },
      options);
  auto succeeded = [&](uint64_t id) {
    Result<BuildRecord> got = store_.GetBuild(id);
    return got.ok() && got->state == "succeeded";
  };
  queue.Start();
  queue.Request(first);
  queue.Request(first);  // queued or merging
  ASSERT_TRUE(test::WaitFor([&] { return first_pushes == 1; }, kTimeout));
  queue.Request(first);  // merging
  release = true;
  ASSERT_TRUE(test::WaitFor([&] { return succeeded(first.id); }, kTimeout));
  queue.Request(first);  // merged: it would go before the second on the one thread
  queue.Request(second);
  ASSERT_TRUE(test::WaitFor([&] { return succeeded(second.id); }, kTimeout));
  queue.Stop();
  EXPECT_EQ(first_pushes, 1);
}

}  // namespace
}  // namespace manifold
