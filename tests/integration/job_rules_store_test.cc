// The job lifecycle rules (coordinator/job_rules.h) as the stores apply them: every case
// runs against the in-memory store of the loop's tests (MemoryHarness, no service needed)
// and against the PostgreSQL Store (PostgresHarness, a real server per test), so the two
// cannot drift apart.
#include <gtest/gtest.h>

#include <algorithm>

#include "common/digest.h"
#include "coordinator/job_rules.h"
#include "coordinator/store.h"
#include "tests/support/memory_store.h"
#include "tests/support/postgres_server.h"

namespace manifold {
namespace {

// What the suite needs beyond LoopStore, which the two stores spell differently.
struct MemoryHarness {
  Status Start() { return Status::Ok(); }
  LoopStore& store() { return memory; }
  Result<BuildRecord> Create(const BuildSpec& spec) { return memory.CreateBuild(spec); }
  Result<BuildRecord> Get(uint64_t id) { return memory.GetBuild(id); }
  Result<std::vector<LogChunkRecord>> Logs(uint64_t build_id) {
    return memory.ListLogs(build_id, 0, 100);
  }

  test::MemoryStore memory;
};

// Starts its server only when a test of the Postgres half runs.
struct PostgresHarness {
  Status Start() {
    if (Status started = postgres.Start(); !started.ok()) return started;
    Result<std::unique_ptr<Store>> opened = Store::Open(postgres.url());
    if (!opened.ok()) return opened.status();
    postgres_store = std::move(*opened);
    return postgres_store->Migrate();
  }
  LoopStore& store() { return *postgres_store; }
  Result<BuildRecord> Create(const BuildSpec& spec) {
    Result<std::pair<BuildRecord, bool>> created = postgres_store->CreateBuild(spec, "");
    if (!created.ok()) return created.status();
    return created->first;
  }
  Result<BuildRecord> Get(uint64_t id) { return postgres_store->GetBuild(id); }
  Result<std::vector<LogChunkRecord>> Logs(uint64_t build_id) {
    return postgres_store->ListLogs(build_id, 0, 100);
  }

  test::PostgresServer postgres;
  std::unique_ptr<Store> postgres_store;
};

constexpr uint32_t kMaxRetries = 3;

JobResultMsg Succeeded(JobRef job) {
  ImageDescriptor image{"application/vnd.oci.image.manifest.v1+json",
                        Sha256Digest("manifest " + std::to_string(job.job_id)), 761};
  return {job, true, image, "", false};
}

JobResultMsg Failed(JobRef job, const std::string& error, bool retryable) {
  return {job, false, {}, error, retryable};
}

std::vector<std::string> States(const BuildRecord& build) {
  std::vector<std::string> states;
  for (const JobRecord& job : build.jobs) states.push_back(job.state);
  return states;
}

template <typename Harness>
class JobRulesStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status started = harness_.Start();
    ASSERT_TRUE(started.ok()) << started.message();
    for (const char* agent : {"a1", "a2", "a3"}) {
      HelloMsg hello;
      hello.agent_id = agent;
      ASSERT_TRUE(store().UpsertAgent(hello).ok());
    }
  }

  LoopStore& store() { return harness_.store(); }

  // A build for linux/amd64 and linux/arm64, its jobs pending.
  BuildRecord Submit() {
    BuildSpec spec;
    spec.platforms = {*ParsePlatform("linux/amd64"), *ParsePlatform("linux/arm64")};
    spec.tags = {"127.0.0.1:5000/app:latest"};
    spec.context_digest = Sha256Digest("context");
    spec.dockerfile = "FROM busybox\n";
    Result<BuildRecord> created = harness_.Create(spec);
    EXPECT_TRUE(created.ok()) << created.status().message();
    return created.ok() ? *created : BuildRecord{};
  }

  BuildRecord Get(uint64_t id) {
    Result<BuildRecord> build = harness_.Get(id);
    EXPECT_TRUE(build.ok()) << build.status().message();
    return build.ok() ? *build : BuildRecord{};
  }

  // Assigns `job` to `agent`; its new attempt, 0 if it was not pending.
  uint32_t Assign(uint64_t job, const std::string& agent) {
    Result<std::vector<uint32_t>> attempts = store().AssignJobs({{job, agent, false, "native"}});
    EXPECT_TRUE(attempts.ok()) << attempts.status().message();
    return attempts.ok() ? attempts->at(0) : 0;
  }

  ResultOutcome Record(const std::string& agent, const JobResultMsg& result,
                       uint32_t max_retries = kMaxRetries) {
    Result<ResultOutcome> outcome = store().RecordJobResult(agent, result, max_retries);
    EXPECT_TRUE(outcome.ok()) << outcome.status().message();
    return outcome.ok() ? *outcome : ResultOutcome{};
  }

  // Whether each phase was current.
  std::vector<bool> Phases(const std::vector<std::pair<std::string, JobUpdateMsg>>& phases) {
    std::vector<bool> current;
    Result<std::vector<ResultOutcome>> recorded =
        store().RecordJobReports(phases, {}, kMaxRetries, &current);
    EXPECT_TRUE(recorded.ok()) << recorded.status().message();
    return current;
  }

  Harness harness_;
};

// The memory store first: tests/CMakeLists.txt runs JobRulesStoreTest/0 with the unit tests.
using Stores = ::testing::Types<MemoryHarness, PostgresHarness>;
TYPED_TEST_SUITE(JobRulesStoreTest, Stores);

TYPED_TEST(JobRulesStoreTest, ResultOfAnotherAgentOrAttemptChangesNothing) {
  BuildRecord build = this->Submit();
  uint64_t job = build.jobs[0].id;
  ASSERT_EQ(this->Assign(job, "a1"), 1u);

  EXPECT_FALSE(this->Record("a2", Succeeded({job, 1})).current);
  EXPECT_FALSE(this->Record("a1", Failed({job, 2}, "boom", false)).current);
  EXPECT_EQ(States(this->Get(build.id)), (std::vector<std::string>{"assigned", "pending"}));

  // The first attempt is retried; its late result is stale.
  ASSERT_TRUE(this->Record("a1", Failed({job, 1}, "agent lost", true)).current);
  ASSERT_EQ(this->Assign(job, "a2"), 2u);
  EXPECT_FALSE(this->Record("a1", Succeeded({job, 1})).current);
  EXPECT_FALSE(this->Record("a1", Failed({job, 1}, "boom", false)).current);
  BuildRecord after = this->Get(build.id);
  EXPECT_EQ(after.state, "running");
  EXPECT_EQ(after.jobs[0].state, "assigned");
  EXPECT_EQ(after.jobs[0].agent_id, "a2");
}

TYPED_TEST(JobRulesStoreTest, ResultAfterTheJobEndedChangesNothing) {
  BuildRecord build = this->Submit();
  uint64_t amd = build.jobs[0].id, arm = build.jobs[1].id;
  ASSERT_EQ(this->Assign(amd, "a1"), 1u);
  ASSERT_EQ(this->Assign(arm, "a2"), 1u);
  Result<ResultOutcome> ended =
      this->store().EndJob(amd, 1, "timed_out", "timed out after 3600s", "amd64 timed out");
  ASSERT_TRUE(ended.ok()) << ended.status().message();
  ASSERT_TRUE(ended->current);

  EXPECT_FALSE(this->Record("a1", Succeeded({amd, 1})).current);
  EXPECT_FALSE(this->Record("a2", Succeeded({arm, 1})).current);
  EXPECT_FALSE(this->Record("a2", Failed({arm, 1}, "boom", true)).current);
  BuildRecord after = this->Get(build.id);
  EXPECT_EQ(States(after), (std::vector<std::string>{"timed_out", "canceled"}));
  EXPECT_EQ(after.state, "failed");
  EXPECT_EQ(after.error, "amd64 timed out");
}

TYPED_TEST(JobRulesStoreTest, PhaseReportsAreFencedAsResultsAre) {
  BuildRecord build = this->Submit();
  uint64_t amd = build.jobs[0].id, arm = build.jobs[1].id;
  ASSERT_EQ(this->Assign(amd, "a1"), 1u);

  EXPECT_EQ(this->Phases({{"a1", {{amd, 1}, JobPhase::kAccepted}},
                          {"a1", {{amd, 1}, JobPhase::kBuilding}},
                          {"a2", {{amd, 1}, JobPhase::kPushing}},
                          {"a1", {{amd, 2}, JobPhase::kPushing}},
                          {"a1", {{arm, 0}, JobPhase::kBuilding}}}),
            (std::vector<bool>{true, true, false, false, false}));
  BuildRecord after = this->Get(build.id);
  EXPECT_EQ(States(after), (std::vector<std::string>{"building", "pending"}));
  EXPECT_EQ(after.jobs[0].events.back().state, "building");

  ASSERT_TRUE(this->store().EndJob(amd, std::nullopt, "failed", "lost", "lost").ok());
  EXPECT_EQ(this->Phases({{"a1", {{amd, 1}, JobPhase::kPushing}}}), (std::vector<bool>{false}));
  EXPECT_EQ(this->Get(build.id).jobs[0].state, "failed");
}

TYPED_TEST(JobRulesStoreTest, RetryableFailureWithAttemptsLeftRequeues) {
  BuildRecord build = this->Submit();
  uint64_t job = build.jobs[0].id;
  ASSERT_EQ(this->Assign(job, "a1"), 1u);

  ResultOutcome outcome = this->Record("a1", Failed({job, 1}, "registry 503", true));
  EXPECT_TRUE(outcome.current);
  EXPECT_FALSE(outcome.build_failed);
  EXPECT_TRUE(outcome.to_cancel.empty());
  ASSERT_TRUE(outcome.requeued.has_value());
  EXPECT_EQ(outcome.requeued->job_id, job);
  EXPECT_EQ(outcome.requeued->build_id, build.id);
  EXPECT_EQ(outcome.requeued->platform, build.jobs[0].platform);
  ASSERT_NE(outcome.requeued->spec, nullptr);
  EXPECT_EQ(outcome.requeued->spec->tags, build.spec.tags);

  BuildRecord after = this->Get(build.id);
  EXPECT_EQ(after.state, "running");
  EXPECT_EQ(after.jobs[0].state, "pending");
  EXPECT_EQ(after.jobs[0].error, "registry 503");
  EXPECT_EQ(after.jobs[0].events.back().state, "retry");
  EXPECT_EQ(this->Assign(job, "a2"), 2u);
}

TYPED_TEST(JobRulesStoreTest, RetryableFailureWithItsRetriesUsedUpFailsTheBuild) {
  BuildRecord build = this->Submit();
  uint64_t amd = build.jobs[0].id, arm = build.jobs[1].id;
  ASSERT_EQ(this->Assign(amd, "a1"), 1u);
  ASSERT_TRUE(this->Record("a1", Failed({amd, 1}, "registry 503", true), 1).requeued);
  EXPECT_EQ(this->Get(build.id).jobs[0].retries, 1u);
  ASSERT_EQ(this->Assign(amd, "a1"), 2u);
  ASSERT_EQ(this->Assign(arm, "a2"), 1u);

  ResultOutcome outcome = this->Record("a1", Failed({amd, 2}, "registry 503", true), 1);
  EXPECT_TRUE(outcome.current);
  EXPECT_TRUE(outcome.build_failed);
  EXPECT_FALSE(outcome.requeued.has_value());
  ASSERT_EQ(outcome.to_cancel.size(), 1u);
  EXPECT_EQ(outcome.to_cancel[0].id, arm);
  EXPECT_EQ(outcome.to_cancel[0].agent_id, "a2");
  EXPECT_EQ(outcome.to_cancel[0].attempt, 1u);

  BuildRecord after = this->Get(build.id);
  EXPECT_EQ(after.state, "failed");
  EXPECT_EQ(after.error,
            "linux/amd64 failed on agent a1 after 2 attempts, its 1 retry after faults outside "
            "the build used up (--max-retries): registry 503");
  EXPECT_EQ(after.error, BuildFailureMessage(after.jobs[0], FailureCause::kInfrastructure, "a1",
                                             "registry 503"));
  EXPECT_EQ(States(after), (std::vector<std::string>{"failed", "canceled"}));
  EXPECT_EQ(after.jobs[0].error, "registry 503");
  EXPECT_EQ(after.jobs[1].error, "canceled: another platform of the build failed");
}

TYPED_TEST(JobRulesStoreTest, ARefusalRequeuesTheJobWithoutUsingARetry) {
  BuildRecord build = this->Submit();
  uint64_t job = build.jobs[0].id;
  for (uint32_t attempt = 1; attempt <= 3; ++attempt) {
    ASSERT_EQ(this->Assign(job, "a1"), attempt);
    JobResultMsg refused = Failed({job, attempt}, "agent a1 has no free slot", true);
    refused.refused = true;
    ResultOutcome outcome = this->Record("a1", refused, 0);  // no retries at all
    EXPECT_TRUE(outcome.current);
    EXPECT_TRUE(outcome.requeued.has_value());
    EXPECT_FALSE(outcome.build_failed);
  }
  BuildRecord after = this->Get(build.id);
  EXPECT_NE(after.state, "failed");
  EXPECT_EQ(after.jobs[0].state, "pending");
  EXPECT_EQ(after.jobs[0].retries, 0u);
  EXPECT_EQ(after.jobs[0].events.back().state, "requeued");
}

TYPED_TEST(JobRulesStoreTest, NonRetryableFailureFailsTheBuildAtOnce) {
  BuildRecord build = this->Submit();
  uint64_t amd = build.jobs[0].id;
  ASSERT_EQ(this->Assign(amd, "a1"), 1u);

  ResultOutcome outcome = this->Record("a1", Failed({amd, 1}, "no such file: go.mod", false));
  EXPECT_TRUE(outcome.current);
  EXPECT_TRUE(outcome.build_failed);
  EXPECT_FALSE(outcome.requeued.has_value());
  ASSERT_EQ(outcome.to_cancel.size(), 1u);  // the pending job, never assigned
  EXPECT_EQ(outcome.to_cancel[0].id, build.jobs[1].id);
  BuildRecord after = this->Get(build.id);
  EXPECT_EQ(after.error, "linux/amd64 failed on agent a1 after 1 attempt: no such file: go.mod");
  EXPECT_EQ(States(after), (std::vector<std::string>{"failed", "canceled"}));
}

TYPED_TEST(JobRulesStoreTest, SuccessOfTheLastJobHandsTheBuildToTheMerge) {
  BuildRecord build = this->Submit();
  uint64_t amd = build.jobs[0].id, arm = build.jobs[1].id;
  ASSERT_EQ(this->Assign(amd, "a1"), 1u);
  ASSERT_EQ(this->Assign(arm, "a2"), 1u);

  ResultOutcome first = this->Record("a1", Succeeded({amd, 1}));
  EXPECT_TRUE(first.current);
  EXPECT_EQ(first.build_id, build.id);
  EXPECT_FALSE(first.to_merge.has_value());
  ResultOutcome last = this->Record("a2", Succeeded({arm, 1}));
  EXPECT_TRUE(last.current);
  ASSERT_TRUE(last.to_merge.has_value());
  EXPECT_EQ(last.to_merge->id, build.id);
  EXPECT_EQ(last.to_merge->state, "merging");
  EXPECT_FALSE(last.to_merge->merge_started_at.empty());
  EXPECT_EQ(States(*last.to_merge), (std::vector<std::string>{"succeeded", "succeeded"}));
  EXPECT_EQ(last.to_merge->jobs[1].manifest, Succeeded({arm, 1}).image);

  Result<std::vector<BuildRecord>> merging = this->store().BuildsToMerge();
  ASSERT_TRUE(merging.ok()) << merging.status().message();
  ASSERT_EQ(merging->size(), 1u);
  EXPECT_EQ((*merging)[0].id, build.id);
}

TYPED_TEST(JobRulesStoreTest, AssignmentMovesOnlyPendingJobs) {
  BuildRecord build = this->Submit();
  uint64_t amd = build.jobs[0].id, arm = build.jobs[1].id;
  ASSERT_EQ(this->Assign(amd, "a1"), 1u);

  Result<std::vector<uint32_t>> attempts =
      this->store().AssignJobs({{amd, "a2", false, "native"}, {arm, "a2", true, "emulated"}});
  ASSERT_TRUE(attempts.ok()) << attempts.status().message();
  EXPECT_EQ(*attempts, (std::vector<uint32_t>{0, 1}));
  BuildRecord after = this->Get(build.id);
  EXPECT_EQ(after.jobs[0].agent_id, "a1");
  EXPECT_TRUE(after.jobs[1].emulated);
  EXPECT_EQ(after.jobs[1].placement, "emulated");
  EXPECT_GT(after.jobs[1].deadline_unix_ms, 0);

  Result<std::vector<JobRecord>> active = this->store().ActiveJobs();
  ASSERT_TRUE(active.ok()) << active.status().message();
  EXPECT_EQ(active->size(), 2u);
  ASSERT_TRUE(this->store().EndJob(amd, 1, "failed", "lost", "lost").ok());
  EXPECT_EQ(this->Assign(arm, "a3"), 0u);  // canceled with its build
  Result<std::vector<QueuedJob>> pending = this->store().PendingJobs();
  ASSERT_TRUE(pending.ok()) << pending.status().message();
  EXPECT_TRUE(pending->empty());
}

TYPED_TEST(JobRulesStoreTest, WaitingReasonsGoOnPendingJobsOnlyAndARequeueClearsThem) {
  BuildRecord build = this->Submit();
  uint64_t amd = build.jobs[0].id, arm = build.jobs[1].id;
  ASSERT_EQ(this->Assign(amd, "a1"), 1u);
  const std::string why = "no connected agent serves linux/arm64";
  ASSERT_TRUE(this->store().SetWaitingReasons({{amd, "stale"}, {arm, why}}).ok());
  BuildRecord after = this->Get(build.id);
  EXPECT_EQ(after.jobs[0].placement, "native");  // assigned: it keeps why it went there
  EXPECT_EQ(after.jobs[1].placement, why);

  this->Record("a1", Failed({amd, 1}, "registry 503", true));
  ASSERT_TRUE(this->store().SetWaitingReasons({{arm, ""}}).ok());
  after = this->Get(build.id);
  EXPECT_EQ(after.jobs[0].state, "pending");
  EXPECT_EQ(after.jobs[0].placement, "");
  EXPECT_EQ(after.jobs[1].placement, "");
}

TYPED_TEST(JobRulesStoreTest, EndJobOfAStaleAttemptOrAnEndedJobDoesNothing) {
  BuildRecord build = this->Submit();
  uint64_t amd = build.jobs[0].id;
  ASSERT_EQ(this->Assign(amd, "a1"), 1u);

  Result<ResultOutcome> stale = this->store().EndJob(amd, 2, "timed_out", "late", "late");
  ASSERT_TRUE(stale.ok()) << stale.status().message();
  EXPECT_FALSE(stale->current);
  EXPECT_EQ(stale->build_id, build.id);
  EXPECT_EQ(this->Get(build.id).state, "running");

  Result<ResultOutcome> ended = this->store().EndJob(amd, 1, "timed_out", "late", "too late");
  ASSERT_TRUE(ended.ok()) << ended.status().message();
  EXPECT_TRUE(ended->current);
  EXPECT_TRUE(ended->build_failed);
  Result<ResultOutcome> again = this->store().EndJob(amd, std::nullopt, "failed", "x", "x");
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_FALSE(again->current);
  BuildRecord after = this->Get(build.id);
  EXPECT_EQ(after.jobs[0].state, "timed_out");
  EXPECT_EQ(after.error, "too late");
}

TYPED_TEST(JobRulesStoreTest, CompleteAndFailBuildMoveTheBuild) {
  BuildRecord merged = this->Submit();
  for (const JobRecord& job : merged.jobs) {
    ASSERT_EQ(this->Assign(job.id, "a1"), 1u);
    ASSERT_TRUE(this->Record("a1", Succeeded({job.id, 1})).current);
  }
  BuildRecord failed = this->Submit();
  BuildRecord queued = this->Submit();

  Result<double> seconds = this->store().CompleteBuild(merged.id, Sha256Digest("index"),
                                                       "application/vnd.oci.image.index.v1+json");
  ASSERT_TRUE(seconds.ok()) << seconds.status().message();
  EXPECT_GE(*seconds, 0.0);
  EXPECT_TRUE(this->store().FailBuild(merged.id, "too late").ok());  // succeeded stays
  EXPECT_TRUE(this->store().FailBuild(failed.id, "merge failed").ok());

  BuildRecord done = this->Get(merged.id);
  EXPECT_EQ(done.state, "succeeded");
  EXPECT_EQ(done.index_digest, Sha256Digest("index"));
  EXPECT_EQ(done.error, "");
  EXPECT_EQ(this->Get(failed.id).error, "merge failed");
  EXPECT_EQ(this->Get(queued.id).state, "queued");
}

TYPED_TEST(JobRulesStoreTest, LogChunksAreFencedAndKeptOnce) {
  BuildRecord build = this->Submit();
  uint64_t amd = build.jobs[0].id;
  ASSERT_EQ(this->Assign(amd, "a1"), 1u);

  auto append = [&](const std::string& agent, JobRef job, uint64_t seq) {
    Result<LogAppend> appended =
        this->store().AppendLog(job, agent, seq, "step " + std::to_string(seq), LogCap{});
    EXPECT_TRUE(appended.ok()) << appended.status().message();
    return appended.ok() && appended->current;
  };
  EXPECT_TRUE(append("a1", {amd, 1}, 1));
  EXPECT_TRUE(append("a1", {amd, 1}, 1));  // sent again: kept once
  EXPECT_TRUE(append("a1", {amd, 1}, 2));
  EXPECT_FALSE(append("a2", {amd, 1}, 3));
  EXPECT_FALSE(append("a1", {amd, 2}, 3));
  EXPECT_FALSE(append("", {build.jobs[1].id, 0}, 1));  // never assigned

  Result<std::vector<LogChunkRecord>> logs = this->harness_.Logs(build.id);
  ASSERT_TRUE(logs.ok()) << logs.status().message();
  ASSERT_EQ(logs->size(), 2u);
  EXPECT_EQ((*logs)[0].data, "step 1");
  EXPECT_EQ((*logs)[1].data, "step 2");
  EXPECT_EQ((*logs)[1].platform, "linux/amd64");
  EXPECT_LT((*logs)[0].seq, (*logs)[1].seq);
}

// A job's output past its cap keeps the head and the tail: the oldest tail chunks are cut
// in batches, the first tail chunk kept says how much was cut before it, and a chunk sent
// again after it was cut is not stored again after newer output.
TYPED_TEST(JobRulesStoreTest, LogOverItsCapKeepsTheHeadAndTheTailWithTheCutMarked) {
  BuildRecord build = this->Submit();
  uint64_t amd = build.jobs[0].id;
  ASSERT_EQ(this->Assign(amd, "a1"), 1u);
  const LogCap cap{1000};  // head 500 bytes, tail 500
  uint64_t cut = 0;
  auto append = [&](uint64_t seq) {
    std::string line = "line " + std::to_string(seq) + "\n";
    line.resize(100, '.');
    Result<LogAppend> appended = this->store().AppendLog({amd, 1}, "a1", seq, line, cap);
    ASSERT_TRUE(appended.ok()) << appended.status().message();
    EXPECT_TRUE(appended->current);
    cut += appended->cut_bytes;
  };
  for (uint64_t seq = 1; seq <= 100; ++seq) append(seq);
  append(20);  // a replay of a chunk cut long ago

  Result<std::vector<LogChunkRecord>> logs = this->harness_.Logs(build.id);
  ASSERT_TRUE(logs.ok()) << logs.status().message();
  std::string text;
  uint64_t marked = 0;
  for (const LogChunkRecord& chunk : *logs) {
    if (chunk.cut_before > 0) text += "[cut]";
    marked += chunk.cut_before;
    text += chunk.data.substr(0, chunk.data.find('\n'));
  }
  // Five chunks fill the head; the tail is cut back to five chunks once it reaches seven.
  EXPECT_EQ(marked, cut);
  EXPECT_GE(cut, 8800u);
  EXPECT_EQ(text.substr(0, 30), "line 1line 2line 3line 4line 5");
  EXPECT_NE(text.find("line 5[cut]line "), std::string::npos) << text;
  EXPECT_EQ(text.substr(text.size() - 8), "line 100") << text;
  EXPECT_LE(logs->size(), 5u + 7u);
  EXPECT_EQ(text.find("line 20"), std::string::npos) << text;
}

}  // namespace
}  // namespace manifold
