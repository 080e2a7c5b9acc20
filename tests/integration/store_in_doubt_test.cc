// The store when a COMMIT's outcome is unknown: a proxy (tests/support/postgres_proxy.h)
// between the store and a real PostgreSQL cuts the connection right after the server got
// the COMMIT (it commits, the store never hears) or instead of it (it rolls back). Each
// transition, called again as its callers do when told the database is unavailable, must
// then be applied once and answer what it did, as if nothing had broken.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "common/digest.h"
#include "coordinator/store.h"
#include "tests/support/postgres_proxy.h"
#include "tests/support/postgres_server.h"

namespace manifold {
namespace {

using test::PostgresProxy;

constexpr uint32_t kMaxAttempts = 3;

// What the callers do with an answer saying the database is unavailable: try again (the
// loop keeps a result and records it again; the scheduler plans the pass again; a client
// submits again).
template <typename F>
auto AsCallersDo(F call) {
  auto answer = call();
  if (!answer.ok() && answer.status().retryable()) answer = call();
  return answer;
}

Platform P(const char* text) { return *ParsePlatform(text); }

JobResultMsg Success(JobRef job) {
  return {job,
          true,
          {"application/vnd.oci.image.manifest.v1+json",
           Sha256Digest("manifest " + std::to_string(job.job_id)), 761},
          "",
          false};
}

// One server for the suite; each test has its own builds, and its own store through a
// proxy of its own, so a cut connection of one test is none of the next one's business.
class StoreInDoubtTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    postgres_ = new test::PostgresServer;
    Status started = postgres_->Start();
    ASSERT_TRUE(started.ok()) << started.message();
    Result<std::unique_ptr<Store>> opened = Store::Open(postgres_->url());
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    direct_ = opened->release();
    ASSERT_TRUE(direct_->Migrate().ok());
    for (const char* agent : {"x86", "arm"}) {
      HelloMsg hello;
      hello.agent_id = agent;
      ASSERT_TRUE(direct_->UpsertAgent(hello).ok());
    }
  }
  static void TearDownTestSuite() {
    delete direct_;
    delete postgres_;
  }

  void SetUp() override {
    ASSERT_TRUE(proxy_.Start(postgres_->port()).ok());
    // A lost COMMIT's fate is asked for 1 s (5 s in the coordinator), longer than the
    // database below is kept away when it is to answer.
    Result<std::unique_ptr<Store>> opened = Store::Open(
        "postgresql://postgres@127.0.0.1:" + std::to_string(proxy_.port()) + "/manifold", 1,
        std::chrono::seconds(1));
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    proxied_ = std::move(*opened);
  }

  static BuildSpec Spec() {
    BuildSpec spec;
    spec.platforms = {P("linux/amd64"), P("linux/arm64")};
    spec.tags = {"127.0.0.1:5000/app:latest"};
    spec.context_digest = Sha256Digest("context");
    spec.dockerfile = "FROM busybox\n";
    return spec;
  }

  // A build whose two jobs are assigned (attempt 1) to agents x86 and arm.
  static BuildRecord AssignedBuild() {
    Result<std::pair<BuildRecord, bool>> created = direct_->CreateBuild(Spec(), "");
    EXPECT_TRUE(created.ok()) << created.status().message();
    const BuildRecord& build = created->first;
    Result<std::vector<uint32_t>> attempts = direct_->AssignJobs(
        {{build.jobs[0].id, "x86", false, "test"}, {build.jobs[1].id, "arm", false, "test"}});
    EXPECT_TRUE(attempts.ok()) << attempts.status().message();
    return build;
  }

  static BuildRecord Reread(uint64_t build_id) {
    Result<BuildRecord> build = direct_->GetBuild(build_id);
    EXPECT_TRUE(build.ok()) << build.status().message();
    return *build;
  }

  static long Events(const JobRecord& job, const std::string& state) {
    return std::count_if(job.events.begin(), job.events.end(),
                         [&](const JobEvent& e) { return e.state == state; });
  }

  // The last job's success, recorded through the proxy that cuts its COMMIT `where`:
  // recorded once, and its outcome hands the build to the merge.
  void ExpectLastSuccessRecordedOnce(PostgresProxy::Cut where) {
    BuildRecord build = AssignedBuild();
    ASSERT_TRUE(direct_->RecordJobResult("x86", Success({build.jobs[0].id, 1}), kMaxAttempts).ok());
    proxy_.CutNextCommit(where);
    Result<ResultOutcome> outcome = AsCallersDo([&] {
      return proxied_->RecordJobResult("arm", Success({build.jobs[1].id, 1}), kMaxAttempts);
    });
    EXPECT_EQ(proxy_.commits_cut(), 1);
    ASSERT_TRUE(outcome.ok()) << outcome.status().message();
    EXPECT_TRUE(outcome->current);
    ASSERT_TRUE(outcome->to_merge.has_value());
    EXPECT_EQ(outcome->to_merge->id, build.id);
    BuildRecord now = Reread(build.id);
    EXPECT_EQ(now.state, "merging");
    EXPECT_EQ(Events(now.jobs[1], "succeeded"), 1);
  }

  static test::PostgresServer* postgres_;
  static Store* direct_;
  PostgresProxy proxy_;
  std::unique_ptr<Store> proxied_;
};

test::PostgresServer* StoreInDoubtTest::postgres_ = nullptr;
Store* StoreInDoubtTest::direct_ = nullptr;

TEST_F(StoreInDoubtTest, LastSuccessCommittedUnheardHandsTheBuildToTheMerge) {
  ExpectLastSuccessRecordedOnce(PostgresProxy::Cut::kAfterCommit);
}

TEST_F(StoreInDoubtTest, LastSuccessWhoseCommitNeverArrivedIsRecordedOnce) {
  ExpectLastSuccessRecordedOnce(PostgresProxy::Cut::kInsteadOfCommit);
}

TEST_F(StoreInDoubtTest, RetryableFailureCommittedUnheardIsRequeuedOnce) {
  BuildRecord build = AssignedBuild();
  proxy_.CutNextCommit(PostgresProxy::Cut::kAfterCommit);
  Result<ResultOutcome> outcome = AsCallersDo([&] {
    return proxied_->RecordJobResult(
        "x86", {{build.jobs[0].id, 1}, false, {}, "registry hiccup", true}, kMaxAttempts);
  });
  EXPECT_EQ(proxy_.commits_cut(), 1);
  ASSERT_TRUE(outcome.ok()) << outcome.status().message();
  EXPECT_TRUE(outcome->current);
  ASSERT_TRUE(outcome->requeued.has_value());
  EXPECT_EQ(outcome->requeued->job_id, build.jobs[0].id);
  JobRecord job = Reread(build.id).jobs[0];
  EXPECT_EQ(job.state, "pending");
  EXPECT_EQ(Events(job, "retry"), 1);
}

TEST_F(StoreInDoubtTest, SchedulingPassCommittedUnheardAssignsOnce) {
  Result<std::pair<BuildRecord, bool>> created = direct_->CreateBuild(Spec(), "");
  ASSERT_TRUE(created.ok()) << created.status().message();
  const BuildRecord& build = created->first;
  proxy_.CutNextCommit(PostgresProxy::Cut::kAfterCommit);
  Result<std::vector<uint32_t>> attempts = AsCallersDo([&] {
    return proxied_->AssignJobs(
        {{build.jobs[0].id, "x86", false, "test"}, {build.jobs[1].id, "arm", false, "test"}});
  });
  EXPECT_EQ(proxy_.commits_cut(), 1);
  ASSERT_TRUE(attempts.ok()) << attempts.status().message();
  EXPECT_EQ(*attempts, (std::vector<uint32_t>{1, 1}));
  for (const JobRecord& job : Reread(build.id).jobs) {
    EXPECT_EQ(job.state, "assigned");
    EXPECT_EQ(job.attempt, 1u);
  }
}

TEST_F(StoreInDoubtTest, SubmitCommittedUnheardCreatesOneBuild) {
  Result<std::vector<BuildRecord>> before = direct_->ListBuilds(1);
  ASSERT_TRUE(before.ok()) << before.status().message();
  const uint64_t last = before->empty() ? 0 : before->front().id;
  proxy_.CutNextCommit(PostgresProxy::Cut::kAfterCommit);
  Result<std::pair<BuildRecord, bool>> created =
      AsCallersDo([&] { return proxied_->CreateBuild(Spec(), ""); });
  EXPECT_EQ(proxy_.commits_cut(), 1);
  ASSERT_TRUE(created.ok()) << created.status().message();
  EXPECT_TRUE(created->second);
  Result<std::vector<BuildRecord>> after = direct_->ListBuilds(10);
  ASSERT_TRUE(after.ok()) << after.status().message();
  EXPECT_EQ(std::count_if(after->begin(), after->end(),
                          [&](const BuildRecord& b) { return b.id > last; }),
            1);
  EXPECT_EQ(after->front().id, created->first.id);
}

// A database that is out of reach for a moment (restarting) is waited for, and then
// tells what became of the COMMIT.
TEST_F(StoreInDoubtTest, OutcomeIsReadBackOnceTheDatabaseAnswersAgain) {
  BuildRecord build = AssignedBuild();
  ASSERT_TRUE(direct_->RecordJobResult("x86", Success({build.jobs[0].id, 1}), kMaxAttempts).ok());
  proxy_.RefuseConnections(true);
  proxy_.CutNextCommit(PostgresProxy::Cut::kAfterCommit);
  std::thread back([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    proxy_.RefuseConnections(false);
  });
  Result<ResultOutcome> outcome =
      proxied_->RecordJobResult("arm", Success({build.jobs[1].id, 1}), kMaxAttempts);
  back.join();
  EXPECT_EQ(proxy_.commits_cut(), 1);
  ASSERT_TRUE(outcome.ok()) << outcome.status().message();
  EXPECT_TRUE(outcome->current);
  ASSERT_TRUE(outcome->to_merge.has_value());
  EXPECT_EQ(outcome->to_merge->id, build.id);
}

// While the database cannot be reached the outcome stays unknown, and the caller is told
// so rather than that nothing was written.
TEST_F(StoreInDoubtTest, OutcomeThatStaysUnknownIsReportedAsUnknown) {
  BuildRecord build = AssignedBuild();
  ASSERT_TRUE(direct_->RecordJobResult("x86", Success({build.jobs[0].id, 1}), kMaxAttempts).ok());
  proxy_.RefuseConnections(true);
  proxy_.CutNextCommit(PostgresProxy::Cut::kAfterCommit);
  Result<ResultOutcome> unknown =
      proxied_->RecordJobResult("arm", Success({build.jobs[1].id, 1}), kMaxAttempts);
  EXPECT_EQ(proxy_.commits_cut(), 1);
  ASSERT_FALSE(unknown.ok());
  EXPECT_TRUE(unknown.status().retryable());
  EXPECT_NE(unknown.status().message().find("whether it was recorded is unknown"),
            std::string::npos)
      << unknown.status().message();
  EXPECT_EQ(proxied_->unknown_outcomes(), 1u);   // so the loop reads its view back
  EXPECT_EQ(Reread(build.id).state, "merging");  // it was: a restarted coordinator merges it
}

}  // namespace
}  // namespace manifold
