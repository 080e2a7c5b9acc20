// The store against a real PostgreSQL: migrations, idempotent submit, fencing of stale
// attempts, retries, failure propagation, logs, and riding out a database restart.
#include "coordinator/store.h"

#include <gtest/gtest.h>

#include "common/digest.h"
#include "tests/support/postgres_server.h"

namespace manifold {
namespace {

Platform P(const char* text) { return *ParsePlatform(text); }

HelloMsg Agent(const std::string& id, const char* platform) {
  HelloMsg hello;
  hello.agent_id = id;
  hello.hostname = id + ".local";
  hello.platforms = {{P(platform), false}};
  return hello;
}

JobResultMsg Success(JobRef job, char fill) {
  return {job,
          true,
          {"application/vnd.oci.image.manifest.v1+json", "sha256:" + std::string(64, fill), 761},
          "",
          false};
}

JobResultMsg Failure(JobRef job, std::string error, bool retryable) {
  return {job, false, {}, std::move(error), retryable};
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status started = postgres_.Start();
    ASSERT_TRUE(started.ok()) << started.message();
    Result<std::unique_ptr<Store>> opened = Store::Open(postgres_.url());
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    store_ = std::move(*opened);
    ASSERT_TRUE(store_->Migrate().ok());
    ASSERT_TRUE(store_->UpsertAgent(Agent("x86", "linux/amd64")).ok());
    ASSERT_TRUE(store_->UpsertAgent(Agent("arm", "linux/arm64")).ok());
  }

  BuildRecord Submit(const std::string& key = "") {
    BuildSpec spec;
    spec.platforms = {P("linux/amd64"), P("linux/arm64")};
    spec.tags = {"127.0.0.1:5000/app:latest"};
    spec.context_digest = Sha256Digest("context");
    spec.dockerfile = "FROM busybox\n";
    spec.build_args = {{"A", "1"}};
    auto created = store_->CreateBuild(spec, key);
    EXPECT_TRUE(created.ok()) << created.status().message();
    return created->first;
  }

  test::PostgresServer postgres_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, MigrationsAreRecordedAndIdempotent) {
  EXPECT_TRUE(store_->Migrate().ok());
  BuildRecord build = Submit();
  EXPECT_EQ(build.state, "queued");
  ASSERT_EQ(build.jobs.size(), 2u);
  EXPECT_EQ(build.jobs[0].platform, P("linux/amd64"));
  EXPECT_EQ(build.jobs[0].state, "pending");
  EXPECT_EQ(build.spec.build_args.at("A"), "1");
}

TEST_F(StoreTest, EmulationPolicyAndPlacementAreKept) {
  BuildSpec spec = Submit().spec;
  spec.emulation = EmulationPolicy::kNever;
  auto created = store_->CreateBuild(spec, "");
  ASSERT_TRUE(created.ok()) << created.status().message();
  uint64_t amd = created->first.jobs[0].id;
  ASSERT_TRUE(
      store_->AssignJob(amd, "x86", false, "native, warm cache for registry.test/app").ok());

  auto stored = store_->GetBuild(created->first.id);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->spec.emulation, EmulationPolicy::kNever);
  EXPECT_EQ(stored->jobs[0].placement, "native, warm cache for registry.test/app");
  EXPECT_EQ(stored->jobs[0].events.back().detail, "native, warm cache for registry.test/app");
  EXPECT_EQ(stored->jobs[1].placement, "");
}

// The sandbox a build asked for survives the store, for a job assigned after a restart too;
// a build that asked for nothing reads back with the agent's defaults.
TEST_F(StoreTest, NetworkEntitlementsAndLimitsRoundTrip) {
  BuildRecord plain = Submit();
  EXPECT_EQ(plain.spec.network, "");
  EXPECT_TRUE(plain.spec.entitlements.empty());
  EXPECT_EQ(plain.spec.limits, JobLimits{});

  BuildSpec spec = plain.spec;
  spec.network = "host";
  spec.entitlements = {"network.host"};
  spec.limits = {uint64_t{3} << 30, 1500, 256, (uint64_t{1} << 53) - 1};
  auto created = store_->CreateBuild(spec, "");
  ASSERT_TRUE(created.ok()) << created.status().message();
  BuildRecord build = *store_->GetBuild(created->first.id);
  EXPECT_EQ(build.spec.network, "host");
  EXPECT_EQ(build.spec.entitlements, spec.entitlements);
  EXPECT_EQ(build.spec.limits, spec.limits);
  auto pending = store_->PendingJobs();
  ASSERT_TRUE(pending.ok() && pending->size() == 4u);
  for (const QueuedJob& job : *pending) {
    const BuildSpec& expected = job.build_id == build.id ? spec : plain.spec;
    EXPECT_EQ(job.spec->network, expected.network);
    EXPECT_EQ(job.spec->entitlements, expected.entitlements);
    EXPECT_EQ(job.spec->limits, expected.limits);
  }
}

TEST_F(StoreTest, BuildOptionsRoundTripAndMergeStartIsRecorded) {
  BuildSpec spec;
  spec.platforms = {P("linux/amd64")};
  spec.tags = {"127.0.0.1:5000/app:latest"};
  spec.context_digest = Sha256Digest("context");
  spec.dockerfile = "FROM busybox\n";
  spec.labels = {{"org.example.team", "builds"}};
  spec.no_cache = true;
  spec.pull = true;
  spec.manifest_annotations = {{"org.example.m", "1"}};
  spec.index_annotations = {{"org.example.i", "2"}};
  spec.source = "https://git.example.com/app.git";
  spec.revision = std::string(40, 'e');
  auto created = store_->CreateBuild(spec, "");
  ASSERT_TRUE(created.ok()) << created.status().message();
  BuildRecord build = *store_->GetBuild(created->first.id);
  EXPECT_EQ(build.spec.labels, spec.labels);
  EXPECT_TRUE(build.spec.no_cache);
  EXPECT_TRUE(build.spec.pull);
  EXPECT_EQ(build.spec.manifest_annotations, spec.manifest_annotations);
  EXPECT_EQ(build.spec.index_annotations, spec.index_annotations);
  EXPECT_EQ(build.spec.source, spec.source);
  EXPECT_EQ(build.spec.revision, spec.revision);
  EXPECT_EQ(build.merge_started_at, "");
  // The scheduler's view carries the same options to the agents.
  auto pending = store_->PendingJobs();
  ASSERT_TRUE(pending.ok() && pending->size() == 1u);
  EXPECT_EQ((*pending)[0].spec->labels, spec.labels);
  EXPECT_TRUE((*pending)[0].spec->pull);

  uint64_t job = build.jobs[0].id;
  ASSERT_EQ(*store_->AssignJob(job, "x86", false, "test placement"), 1u);
  std::optional<BuildRecord> to_merge =
      store_->RecordJobResult("x86", Success({job, 1}, 'a'), 3)->to_merge;
  ASSERT_TRUE(to_merge.has_value());
  BuildRecord merging = *store_->GetBuild(build.id);
  EXPECT_EQ(merging.merge_started_at.size(), std::string("2026-01-01T00:00:00Z").size())
      << merging.merge_started_at;
  EXPECT_TRUE(merging.merge_started_at.ends_with("Z")) << merging.merge_started_at;
  // The merge gets what a read of the build gives, from the result's own transaction.
  EXPECT_EQ(to_merge->merge_started_at, merging.merge_started_at);
  EXPECT_EQ(to_merge->spec.index_annotations, spec.index_annotations);
  EXPECT_EQ(to_merge->spec.source, spec.source);
}

TEST_F(StoreTest, SameIdempotencyKeyReturnsSameBuild) {
  BuildRecord first = Submit("ci-run-17");
  BuildSpec spec = first.spec;
  auto again = store_->CreateBuild(spec, "ci-run-17");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->second);
  EXPECT_EQ(again->first.id, first.id);
  EXPECT_NE(Submit("ci-run-18").id, first.id);
  EXPECT_NE(Submit().id, Submit().id);  // no key: always a new build
}

TEST_F(StoreTest, ResultsAreFencedOnJobAttemptAndAgent) {
  BuildRecord build = Submit();
  uint64_t amd = build.jobs[0].id, arm = build.jobs[1].id;
  ASSERT_EQ(*store_->AssignJob(amd, "x86", false, "test placement"), 1u);
  ASSERT_EQ(*store_->AssignJob(arm, "arm", false, "test placement"), 1u);
  EXPECT_EQ(store_->AssignJob(amd, "x86", false, "test placement").status().code(),
            Status::Code::kFailedPrecondition);  // no longer pending

  EXPECT_FALSE(*store_->SetJobPhase({amd, 1}, "arm", JobPhase::kBuilding));  // wrong agent
  EXPECT_FALSE(*store_->SetJobPhase({amd, 2}, "x86", JobPhase::kBuilding));  // wrong attempt
  EXPECT_TRUE(*store_->SetJobPhase({amd, 1}, "x86", JobPhase::kBuilding));
  EXPECT_EQ(store_->GetBuild(build.id)->state, "running");

  EXPECT_FALSE(store_->RecordJobResult("arm", Success({amd, 1}, 'a'), 3)->current);
  auto first = store_->RecordJobResult("x86", Success({amd, 1}, 'a'), 3);
  ASSERT_TRUE(first.ok() && first->current);
  EXPECT_FALSE(first->to_merge.has_value());
  // A duplicate (resent after a reconnect) changes nothing.
  EXPECT_FALSE(store_->RecordJobResult("x86", Success({amd, 1}, 'a'), 3)->current);
  auto second = store_->RecordJobResult("arm", Success({arm, 1}, 'b'), 3);
  ASSERT_TRUE(second.ok() && second->current);
  ASSERT_TRUE(second->to_merge.has_value());
  EXPECT_EQ(second->to_merge->state, "merging");
  ASSERT_EQ(second->to_merge->jobs.size(), 2u);
  EXPECT_EQ(second->to_merge->jobs[0].state, "succeeded");
  EXPECT_EQ(second->to_merge->jobs[1].manifest, Success({arm, 1}, 'b').image);
  EXPECT_EQ(store_->GetBuild(build.id)->state, "merging");
  Result<std::vector<BuildRecord>> to_merge = store_->BuildsToMerge();
  ASSERT_TRUE(to_merge.ok() && to_merge->size() == 1u);
  EXPECT_EQ((*to_merge)[0].id, build.id);
  EXPECT_EQ((*to_merge)[0].jobs.size(), 2u);

  ASSERT_TRUE(store_
                  ->CompleteBuild(build.id, "sha256:" + std::string(64, 'c'),
                                  "application/vnd.oci.image.index.v1+json")
                  .ok());
  BuildRecord done = *store_->GetBuild(build.id);
  EXPECT_EQ(done.state, "succeeded");
  EXPECT_EQ(done.jobs[1].manifest.digest, "sha256:" + std::string(64, 'b'));
}

// A scheduling pass and a loop turn's reports each in one call, as the coordinator makes
// them: the statements that write a job's change and its event together leave the same
// history as one statement each, and both platforms' results in one transaction merge once.
TEST_F(StoreTest, PassAndReportsOfBothPlatformsInOneCallMergeOnceWithTheFullHistory) {
  BuildRecord build = Submit();
  BuildRecord other = Submit();
  uint64_t amd = build.jobs[0].id, arm = build.jobs[1].id;
  ASSERT_TRUE(store_->CancelBuild(other.id).ok());
  Result<std::vector<uint32_t>> attempts = store_->AssignJobs(
      {{arm, "arm", false, "native, least loaded"},
       {other.jobs[0].id, "x86", false, "native"},  // canceled meanwhile: not assigned
       {amd, "x86", true, "emulated, no native agent"}});
  ASSERT_TRUE(attempts.ok()) << attempts.status().message();
  EXPECT_EQ(*attempts, (std::vector<uint32_t>{1, 0, 1}));
  BuildRecord running = *store_->GetBuild(build.id);
  EXPECT_EQ(running.state, "running");
  EXPECT_EQ(running.jobs[0].agent_id, "x86");
  EXPECT_TRUE(running.jobs[0].emulated);
  EXPECT_EQ(running.jobs[0].placement, "emulated, no native agent");
  EXPECT_GT(running.jobs[0].deadline_unix_ms, 0);
  EXPECT_EQ(store_->GetBuild(other.id)->jobs[0].state, "canceled");

  std::vector<std::pair<std::string, JobUpdateMsg>> phases;
  for (auto [job, agent] : {std::pair{amd, "x86"}, std::pair{arm, "arm"}}) {
    for (JobPhase phase : {JobPhase::kAccepted, JobPhase::kBuilding, JobPhase::kPushing}) {
      phases.push_back({agent, JobUpdateMsg{{job, 1}, phase}});
    }
  }
  phases.push_back({"arm", JobUpdateMsg{{amd, 1}, JobPhase::kPushing}});  // not its job
  std::vector<bool> current;
  Result<std::vector<ResultOutcome>> outcomes = store_->RecordJobReports(
      phases, {{"x86", Success({amd, 1}, 'a')}, {"arm", Success({arm, 1}, 'b')}}, 3, &current);
  ASSERT_TRUE(outcomes.ok()) << outcomes.status().message();
  EXPECT_EQ(current, (std::vector<bool>{true, true, true, true, true, true, false}));
  ASSERT_EQ(outcomes->size(), 2u);
  EXPECT_TRUE((*outcomes)[0].current);
  EXPECT_FALSE((*outcomes)[0].to_merge.has_value());
  EXPECT_EQ((*outcomes)[1].build_id, build.id);
  ASSERT_TRUE((*outcomes)[1].to_merge.has_value());
  const BuildRecord& merging = *(*outcomes)[1].to_merge;
  EXPECT_EQ(merging.state, "merging");
  EXPECT_FALSE(merging.merge_started_at.empty());
  ASSERT_EQ(merging.jobs.size(), 2u);
  EXPECT_EQ(merging.jobs[0].manifest, Success({amd, 1}, 'a').image);
  EXPECT_EQ(merging.jobs[1].state, "succeeded");

  BuildRecord recorded = *store_->GetBuild(build.id);
  for (const JobRecord& job : recorded.jobs) {
    std::vector<std::string> history;
    for (const JobEvent& event : job.events) history.push_back(event.state);
    EXPECT_EQ(history,
              (std::vector<std::string>{"pending", "assigned", "building", "pushing", "succeeded"}))
        << job.platform.ToString();
    EXPECT_EQ(job.events[1].detail, job.placement);
    EXPECT_EQ(job.events[4].detail, job.manifest.digest);
  }
  Result<std::vector<BuildRecord>> to_merge = store_->BuildsToMerge();
  ASSERT_TRUE(to_merge.ok());
  EXPECT_EQ(to_merge->size(), 1u);
}

TEST_F(StoreTest, RetryableFailureRequeuesAndStaleAttemptIsIgnored) {
  BuildRecord build = Submit();
  uint64_t arm = build.jobs[1].id;
  ASSERT_EQ(*store_->AssignJob(arm, "arm", false, "test placement"), 1u);
  auto retried =
      store_->RecordJobResult("arm", Failure({arm, 1}, "registry answered 503", true), 3);
  ASSERT_TRUE(retried.ok());
  ASSERT_TRUE(retried->requeued.has_value());
  EXPECT_EQ(retried->requeued->job_id, arm);
  EXPECT_EQ(retried->requeued->spec->tags, build.spec.tags);
  EXPECT_FALSE(retried->build_failed);
  ASSERT_EQ(store_->PendingJobs()->size(), 2u);

  ASSERT_EQ(*store_->AssignJob(arm, "arm", false, "test placement"), 2u);
  // The first attempt's late success must not overwrite the retry.
  EXPECT_FALSE(store_->RecordJobResult("arm", Success({arm, 1}, 'a'), 3)->current);
  EXPECT_EQ(store_->GetBuild(build.id)->jobs[1].state, "assigned");

  // With its retries used up a retryable failure fails the build.
  ASSERT_TRUE(store_->RecordJobResult("arm", Failure({arm, 2}, "reset", true), 2)->requeued);
  ASSERT_EQ(*store_->AssignJob(arm, "arm", false, "test placement"), 3u);
  auto last = store_->RecordJobResult("arm", Failure({arm, 3}, "connection reset", true), 2);
  ASSERT_TRUE(last.ok());
  EXPECT_FALSE(last->requeued.has_value());
  EXPECT_TRUE(last->build_failed);
  EXPECT_EQ(store_->GetBuild(build.id)->error,
            "linux/arm64 failed on agent arm after 3 attempts, its 2 retries after faults "
            "outside the build used up (--max-retries): connection reset");
}

TEST_F(StoreTest, BuildFailureFailsBuildAndCancelsTheOtherPlatforms) {
  BuildRecord build = Submit();
  uint64_t amd = build.jobs[0].id, arm = build.jobs[1].id;
  ASSERT_TRUE(store_->AssignJob(amd, "x86", false, "test placement").ok());
  ASSERT_TRUE(store_->AssignJob(arm, "arm", true, "test placement").ok());
  auto failed = store_->RecordJobResult("arm", Failure({arm, 1}, "RUN exited with 3", false), 3);
  ASSERT_TRUE(failed.ok());
  EXPECT_TRUE(failed->build_failed);
  ASSERT_EQ(failed->to_cancel.size(), 1u);
  EXPECT_EQ(failed->to_cancel[0].id, amd);
  EXPECT_EQ(failed->to_cancel[0].agent_id, "x86");
  BuildRecord after = *store_->GetBuild(build.id);
  EXPECT_EQ(after.state, "failed");
  EXPECT_EQ(after.error, "linux/arm64 failed on agent arm after 1 attempt: RUN exited with 3");
  EXPECT_EQ(after.jobs[0].state, "canceled");
  EXPECT_TRUE(after.jobs[1].emulated);
  // The canceled job's late result is ignored; no merge follows.
  auto late = store_->RecordJobResult("x86", Success({amd, 1}, 'a'), 3);
  EXPECT_FALSE(late->current);
  EXPECT_FALSE(late->to_merge.has_value());
}

TEST_F(StoreTest, LogsAreOrderedDeduplicatedAndFenced) {
  BuildRecord build = Submit();
  uint64_t amd = build.jobs[0].id, arm = build.jobs[1].id;
  ASSERT_TRUE(store_->AssignJob(amd, "x86", false, "test placement").ok());
  ASSERT_TRUE(store_->AssignJob(arm, "arm", false, "test placement").ok());
  EXPECT_TRUE(store_->AppendLog({amd, 1}, "x86", 1, "STEP 1/2\n", LogCap{})->current);
  EXPECT_TRUE(
      store_->AppendLog({arm, 1}, "arm", 1, std::string("bin\0ary\xff\n", 9), LogCap{})->current);
  EXPECT_TRUE(store_->AppendLog({amd, 1}, "x86", 1, "STEP 1/2\n", LogCap{})->current);  // resent
  EXPECT_TRUE(store_->AppendLog({amd, 1}, "x86", 2, "STEP 2/2\n", LogCap{})->current);
  EXPECT_FALSE(store_->AppendLog({amd, 1}, "arm", 3, "not yours\n", LogCap{})->current);
  auto chunks = store_->ListLogs(build.id, 0, 100);
  ASSERT_TRUE(chunks.ok());
  ASSERT_EQ(chunks->size(), 3u);
  EXPECT_EQ((*chunks)[0].platform, "linux/amd64");
  EXPECT_EQ((*chunks)[1].data, std::string("bin\0ary\xff\n", 9));
  EXPECT_EQ((*chunks)[2].data, "STEP 2/2\n");
  auto rest = store_->ListLogs(build.id, (*chunks)[1].seq, 100);
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ((*rest)[0].data, "STEP 2/2\n");
}

TEST_F(StoreTest, DatabaseRestartIsUnavailableThenRecovers) {
  BuildRecord build = Submit();
  postgres_.Stop();
  Result<BuildRecord> during = store_->GetBuild(build.id);
  ASSERT_FALSE(during.ok());
  EXPECT_EQ(during.status().code(), Status::Code::kUnavailable) << during.status().message();
  EXPECT_FALSE(store_->Ping().ok());
  ASSERT_TRUE(postgres_.Restart().ok());
  EXPECT_TRUE(store_->Ping().ok());
  Result<BuildRecord> after = store_->GetBuild(build.id);
  ASSERT_TRUE(after.ok()) << after.status().message();
  EXPECT_EQ(after->id, build.id);
}

}  // namespace
}  // namespace manifold
