// The loop's rules, run against the in-memory store and a link that records what would
// have been sent, with made-up time: what happens when a message arrives twice, late or
// never, and when an agent pauses, dies or comes back. Milliseconds, no PostgreSQL.
#include "coordinator/agent_loop.h"

#include <gtest/gtest.h>

#include "common/wire.h"
#include "tests/support/memory_store.h"

namespace manifold {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

Platform Of(const char* text) { return ParsePlatform(text).value(); }

class RecordingLink : public AgentLink {
 public:
  void Send(const std::string& routing_id, const CoordinatorMessage& message) override {
    sent.emplace_back(routing_id, message);
  }
  std::string DescribeKey(const std::string&) const override { return ""; }

  // The messages of type T sent to `routing_id`, and forgets everything sent.
  template <typename T>
  std::vector<T> Take(const std::string& routing_id) {
    std::vector<T> found;
    for (const auto& [to, message] : sent) {
      if (to == routing_id && std::holds_alternative<T>(message)) {
        found.push_back(std::get<T>(message));
      }
    }
    sent.clear();
    return found;
  }
  void Clear() { sent.clear(); }

  std::vector<std::pair<std::string, CoordinatorMessage>> sent;
};

class AgentLoopTest : public ::testing::Test {
 protected:
  AgentLoopTest() { loop_ = MakeLoop(); }

  std::unique_ptr<AgentLoop> MakeLoop() {
    LoopOptions options;
    options.heartbeat_interval = seconds(1);
    options.missed_heartbeats = 3;
    options.max_retries = 3;
    options.queue_timeout = seconds(60);
    options.emulation_fallback_wait = seconds(10);
    options.contexts = {"http://127.0.0.1:1", nullptr};
    return std::make_unique<AgentLoop>(
        store_, link_, metrics_, [this](BuildRecord build) { merges_.push_back(build); }, options,
        now_);
  }

  // A build of `platforms` submitted through the store and handed to the loop.
  BuildRecord Submit(std::vector<const char*> platforms, uint32_t job_timeout_s = 3600) {
    BuildSpec spec;
    for (const char* platform : platforms) spec.platforms.push_back(Of(platform));
    spec.tags = {"registry.test/app:latest"};
    spec.context_digest = "sha256:" + std::string(64, 'c');
    spec.dockerfile = "FROM scratch\n";
    spec.job_timeout_s = job_timeout_s;
    BuildRecord build = store_.CreateBuild(spec).value();
    auto shared = std::make_shared<const BuildSpec>(build.spec);
    std::vector<QueuedJob> jobs;
    for (const JobRecord& job : build.jobs) {
      jobs.push_back({job.id, build.id, job.platform, shared});
    }
    loop_->Enqueue(std::move(jobs), nullptr, now_);
    return build;
  }

  void Frame(const std::string& routing_id, const AgentMessage& message) {
    loop_->HandleFrame(routing_id, "", EncodeAgentMessage(message), now_);
  }
  void Hello(const std::string& routing_id, const std::string& agent_id, const char* platform,
             std::vector<JobRef> running = {}, uint32_t slots = 1) {
    HelloMsg hello;
    hello.agent_id = agent_id;
    hello.platforms = {{Of(platform), false}};
    hello.slots = slots;
    hello.running_jobs = std::move(running);
    Frame(routing_id, hello);
  }
  void Succeed(const std::string& routing_id, const JobRef& job) {
    JobResultMsg result;
    result.job = job;
    result.succeeded = true;
    result.image = {"application/vnd.oci.image.manifest.v1+json",
                    "sha256:" + std::string(64, 'a' + job.job_id % 6), 512};
    Frame(routing_id, result);
  }
  void Advance(LoopClock::duration by) {
    now_ += by;
    loop_->Tick(now_);
  }
  // What was sent to `routing_id` holds one assignment, of `job`; forgets what was sent.
  void ExpectAssignedOnly(const std::string& routing_id, const JobRef& job) {
    std::vector<AssignMsg> assigned = link_.Take<AssignMsg>(routing_id);
    ASSERT_EQ(assigned.size(), 1u);
    EXPECT_EQ(assigned[0].job, job);
  }
  JobRecord Job(uint64_t build_id, size_t index) {
    return store_.GetBuild(build_id).value().jobs.at(index);
  }

  LoopClock::time_point now_{std::chrono::hours(1)};
  test::MemoryStore store_;
  RecordingLink link_;
  Metrics metrics_;
  std::vector<BuildRecord> merges_;
  std::unique_ptr<AgentLoop> loop_;
};

// Builds and cancels another coordinator's API wrote to the store reach the leader's loop
// (coordinator/work_listener.h): one build at a time, or all its work read back.
TEST_F(AgentLoopTest, WorkAnotherCoordinatorsApiTookIsScheduledAndCanceledOnItsAgent) {
  Hello("r-amd", "amd1", "linux/amd64");
  BuildSpec spec;
  spec.platforms = {Of("linux/amd64")};
  spec.tags = {"registry.test/app:latest"};
  spec.context_digest = "sha256:" + std::string(64, 'c');
  spec.dockerfile = "FROM scratch\n";
  BuildRecord taken = store_.CreateBuild(spec).value();
  Advance(milliseconds(1));
  EXPECT_TRUE(link_.Take<AssignMsg>("r-amd").empty()) << "the loop was not told of it";
  loop_->TakeBuilds({taken.id}, now_);
  Advance(milliseconds(1));
  ExpectAssignedOnly("r-amd", {taken.jobs[0].id, 1});

  // The memory store has no cancel; ending the job there is what the loop reads alike.
  ASSERT_TRUE(store_.EndJob(taken.jobs[0].id, 1, "failed", "canceled by request", "canceled").ok());
  loop_->TakeCancel(taken.id);
  std::vector<CancelMsg> canceled = link_.Take<CancelMsg>("r-amd");
  ASSERT_EQ(canceled.size(), 1u);
  EXPECT_EQ(canceled[0].job, (JobRef{taken.jobs[0].id, 1}));

  // Read back whole (after the listener reconnected): a new build is taken, and a job the
  // store no longer holds is stopped on its agent.
  BuildRecord next = store_.CreateBuild(spec).value();
  loop_->ReadWorkBack(now_);
  Advance(milliseconds(1));
  ExpectAssignedOnly("r-amd", {next.jobs[0].id, 1});
  ASSERT_TRUE(store_.EndJob(next.jobs[0].id, 1, "failed", "canceled by request", "canceled").ok());
  loop_->ReadWorkBack(now_);
  canceled = link_.Take<CancelMsg>("r-amd");
  ASSERT_EQ(canceled.size(), 1u);
  EXPECT_EQ(canceled[0].job, (JobRef{next.jobs[0].id, 1}));
  EXPECT_TRUE(loop_->running().empty());
}

TEST_F(AgentLoopTest, AWelcomeNamesTheRegistryCachesOfTheAgentsPlatformsForItsWarmStart) {
  Hello("r-arm", "arm1", "linux/arm64");
  EXPECT_TRUE(link_.Take<WelcomeMsg>("r-arm").at(0).warm_start_caches.empty());
  BuildRecord build = Submit({"linux/arm64"});
  Advance(milliseconds(1));
  ExpectAssignedOnly("r-arm", {build.jobs[0].id, 1});
  JobResultMsg result;
  result.job = {build.jobs[0].id, 1};
  result.succeeded = true;
  result.image = {"application/vnd.oci.image.manifest.v1+json", "sha256:" + std::string(64, 'a'),
                  512};
  result.cache_pushed = "registry.test/cache/app/linux-arm64:latest";
  Frame("r-arm", result);

  Hello("r-new", "arm2", "linux/arm64");
  std::vector<WelcomeMsg> welcomes = link_.Take<WelcomeMsg>("r-new");
  ASSERT_EQ(welcomes.size(), 1u);
  ASSERT_EQ(welcomes[0].warm_start_caches.size(), 1u);
  EXPECT_EQ(welcomes[0].warm_start_caches[0].cache_ref, result.cache_pushed);
  EXPECT_EQ(welcomes[0].warm_start_caches[0].repository, "registry.test/app");
  EXPECT_EQ(welcomes[0].warm_start_caches[0].platform, Of("linux/arm64"));
  Hello("r-x86", "x861", "linux/amd64");
  EXPECT_TRUE(link_.Take<WelcomeMsg>("r-x86").at(0).warm_start_caches.empty())
      << "another platform's cache";

  // A restarted coordinator knows them from its store.
  loop_ = MakeLoop();
  ASSERT_TRUE(loop_->Resume(now_).ok());
  Hello("r-next", "arm3", "linux/arm64");
  welcomes = link_.Take<WelcomeMsg>("r-next");
  ASSERT_EQ(welcomes.size(), 1u);
  ASSERT_EQ(welcomes[0].warm_start_caches.size(), 1u);
  EXPECT_EQ(welcomes[0].warm_start_caches[0].cache_ref, result.cache_pushed);
}

TEST_F(AgentLoopTest, AHelloIsWelcomedAndAJobGoesToTheAgentThatServesItsPlatform) {
  Hello("r-arm", "arm1", "linux/arm64");
  Hello("r-x86", "x861", "linux/amd64");
  EXPECT_EQ(link_.Take<WelcomeMsg>("r-arm").size(), 1u);
  BuildRecord build = Submit({"linux/arm64"});
  Advance(milliseconds(1));
  std::vector<AssignMsg> assigned = link_.Take<AssignMsg>("r-arm");
  ASSERT_EQ(assigned.size(), 1u);
  EXPECT_EQ(assigned[0].job, (JobRef{build.jobs[0].id, 1}));
  EXPECT_TRUE(link_.Take<AssignMsg>("r-x86").empty());
  EXPECT_EQ(Job(build.id, 0).state, "assigned");
  EXPECT_EQ(loop_->Agents(now_).size(), 2u);
}

TEST_F(AgentLoopTest, AHelloThatBreaksTheRulesIsRefusedWithAReason) {
  HelloMsg hello;
  hello.agent_id = "a1";
  hello.platforms = {{Of("linux/amd64"), false}};
  hello.slots = 0;
  Frame("r1", hello);
  std::vector<RejectMsg> rejected = link_.Take<RejectMsg>("r1");
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_TRUE(rejected[0].fatal);
  EXPECT_EQ(rejected[0].reason, "agent slots must be 1 to 1024");
  EXPECT_TRUE(loop_->Agents(now_).empty());
}

TEST_F(AgentLoopTest, AResultThatArrivesTwiceIsAcknowledgedTwiceAndMergesOnce) {
  Hello("r1", "a1", "linux/amd64");
  BuildRecord build = Submit({"linux/amd64"});
  Advance(milliseconds(1));
  JobRef job{build.jobs[0].id, 1};
  Succeed("r1", job);
  Advance(milliseconds(1));
  Succeed("r1", job);
  Advance(milliseconds(1));
  EXPECT_EQ(link_.Take<AckMsg>("r1"), (std::vector<AckMsg>{{job}, {job}}));
  ASSERT_EQ(merges_.size(), 1u);
  EXPECT_EQ(merges_[0].id, build.id);
  EXPECT_EQ(Job(build.id, 0).state, "succeeded");
}

TEST_F(AgentLoopTest, ALostAgentsJobGoesToAnotherAgentAndItsLateResultChangesNothing) {
  Hello("r1", "a1", "linux/amd64");
  BuildRecord build = Submit({"linux/amd64"});
  Advance(milliseconds(1));
  ASSERT_EQ(link_.Take<AssignMsg>("r1").size(), 1u);
  Hello("r2", "a2", "linux/amd64");
  // a2 heartbeats, a1 pauses: three missed heartbeats later a1 is lost, and the next
  // scheduling pass moves its job.
  for (int i = 0; i < 5; ++i) {
    Frame("r2", HeartbeatMsg{});
    Advance(milliseconds(800));
  }
  std::vector<AssignMsg> retried = link_.Take<AssignMsg>("r2");
  ASSERT_EQ(retried.size(), 1u);
  EXPECT_EQ(retried[0].job, (JobRef{build.jobs[0].id, 2}));
  EXPECT_EQ(Job(build.id, 0).agent_id, "a2");
  ASSERT_EQ(loop_->Agents(now_).size(), 1u);

  // a1 comes back and finishes attempt 1: acknowledged (it may drop it) but stale.
  Hello("r1", "a1", "linux/amd64", {{build.jobs[0].id, 1}});
  Succeed("r1", {build.jobs[0].id, 1});
  Advance(milliseconds(1));
  EXPECT_EQ(link_.Take<AckMsg>("r1").size(), 1u);
  EXPECT_TRUE(merges_.empty());
  EXPECT_EQ(Job(build.id, 0).state, "assigned");
  EXPECT_EQ(Job(build.id, 0).attempt, 2u);
}

TEST_F(AgentLoopTest, AnAgentThatRestartedWithoutItsJobHasTheJobRetried) {
  Hello("r1", "a1", "linux/amd64");
  BuildRecord build = Submit({"linux/amd64"});
  Advance(milliseconds(1));
  link_.Clear();
  Hello("r1b", "a1", "linux/amd64");  // a new process: it holds nothing
  Advance(milliseconds(1));
  std::vector<AssignMsg> again = link_.Take<AssignMsg>("r1b");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].job.attempt, 2u);
}

TEST_F(AgentLoopTest, AnAttemptPastItsDeadlineIsCanceledAndFailsTheBuild) {
  Hello("r1", "a1", "linux/amd64");
  BuildRecord build = Submit({"linux/amd64"}, 10);
  Advance(milliseconds(1));
  for (int i = 0; i < 11; ++i) {
    Frame("r1", HeartbeatMsg{{{build.jobs[0].id, 1}}});  // the agent still builds it
    Advance(seconds(1));
  }
  EXPECT_EQ(link_.Take<CancelMsg>("r1"), (std::vector<CancelMsg>{{{build.jobs[0].id, 1}}}));
  EXPECT_EQ(Job(build.id, 0).state, "timed_out");
  BuildRecord ended = store_.GetBuild(build.id).value();
  EXPECT_EQ(ended.state, "failed");
  EXPECT_EQ(ended.error, "linux/amd64 timed out on agent a1 after 10 s (attempt 1)");
}

TEST_F(AgentLoopTest, AJobNoAgentServesFailsAfterTheQueueTimeoutNamingTheAgentToStart) {
  BuildRecord build = Submit({"linux/riscv64"});
  Advance(seconds(30));
  EXPECT_EQ(store_.GetBuild(build.id).value().state, "queued");
  Advance(seconds(31));
  BuildRecord ended = store_.GetBuild(build.id).value();
  EXPECT_EQ(ended.state, "failed");
  EXPECT_NE(ended.error.find("manifold-agent --platform linux/riscv64"), std::string::npos);
  EXPECT_TRUE(loop_->waiting().empty());
}

TEST_F(AgentLoopTest, WhenNoPlatformOfABuildIsServedTheBuildFailsOnceAndNothingWaits) {
  BuildRecord build = Submit({"linux/riscv64", "linux/s390x"});
  Advance(seconds(61));
  BuildRecord ended = store_.GetBuild(build.id).value();
  EXPECT_EQ(ended.state, "failed");
  EXPECT_NE(ended.error.find("linux/riscv64"), std::string::npos);
  EXPECT_EQ(ended.jobs[1].state, "canceled");
  EXPECT_TRUE(loop_->waiting().empty());
}

TEST_F(AgentLoopTest, AReportFromAnAgentThatDoesNotHoldTheJobIsAnsweredWithACancel) {
  Hello("r1", "a1", "linux/amd64");
  Hello("r2", "a2", "linux/amd64");
  BuildRecord build = Submit({"linux/amd64"});
  Advance(milliseconds(1));
  JobRecord job = Job(build.id, 0);
  const std::string other = job.agent_id == "a1" ? "r2" : "r1";
  Frame(other, JobUpdateMsg{{job.id, 1}, JobPhase::kBuilding});
  Advance(milliseconds(1));
  EXPECT_EQ(link_.Take<CancelMsg>(other), (std::vector<CancelMsg>{{{job.id, 1}}}));
  EXPECT_EQ(Job(build.id, 0).state, "assigned");
}

TEST_F(AgentLoopTest, FramesBeforeAHelloAreRefusedOnceThenReplayedAfterIt) {
  Hello("r1", "a1", "linux/amd64");
  BuildRecord build = Submit({"linux/amd64"});
  Advance(milliseconds(1));
  JobRef job{build.jobs[0].id, 1};
  // The coordinator restarted: a new loop over the same store, and the agent's queued
  // result reaches it before the agent's new hello.
  loop_ = MakeLoop();
  ASSERT_TRUE(loop_->Resume(now_).ok());
  link_.Clear();
  Succeed("r1", job);
  Frame("r1", HeartbeatMsg{});
  std::vector<RejectMsg> rejected = link_.Take<RejectMsg>("r1");
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_FALSE(rejected[0].fatal);
  Hello("r1", "a1", "linux/amd64", {job});
  Advance(milliseconds(1));
  EXPECT_EQ(link_.Take<AckMsg>("r1"), (std::vector<AckMsg>{{job}}));
  EXPECT_EQ(merges_.size(), 1u);
}

TEST_F(AgentLoopTest, ResultsWaitUnacknowledgedWhileTheDatabaseIsAway) {
  Hello("r1", "a1", "linux/amd64");
  BuildRecord build = Submit({"linux/amd64"});
  Advance(milliseconds(1));
  JobRef job{build.jobs[0].id, 1};
  store_.SetAvailable(false);
  Succeed("r1", job);
  Advance(milliseconds(1));
  Advance(milliseconds(600));
  EXPECT_TRUE(link_.Take<AckMsg>("r1").empty());
  store_.SetAvailable(true);
  Advance(milliseconds(600));
  EXPECT_EQ(link_.Take<AckMsg>("r1"), (std::vector<AckMsg>{{job}}));
  EXPECT_EQ(merges_.size(), 1u);
}

TEST_F(AgentLoopTest, ADrainingAgentGetsNoNewJobAndAGoodbyeRetriesWhatItHeld) {
  Hello("r1", "a1", "linux/amd64", {}, 2);
  BuildRecord first = Submit({"linux/amd64"});
  Advance(milliseconds(1));
  Frame("r1", DrainingMsg{});
  Submit({"linux/amd64"});
  Advance(milliseconds(1));
  EXPECT_EQ(link_.Take<AssignMsg>("r1").size(), 1u);  // only the first build's job
  EXPECT_EQ(loop_->Agents(now_)[0].state, "draining");
  Hello("r2", "a2", "linux/amd64", {}, 2);
  Frame("r1", GoodbyeMsg{});
  Advance(milliseconds(1));
  std::vector<AssignMsg> moved = link_.Take<AssignMsg>("r2");
  ASSERT_EQ(moved.size(), 2u);
  EXPECT_EQ(moved[0].job, (JobRef{first.jobs[0].id, 2}));
}

TEST_F(AgentLoopTest, ARevokedKeyCutsTheAgentOffAndItsJobsAreRetried) {
  Hello("r1", "a1", "linux/amd64");
  BuildRecord build = Submit({"linux/amd64"});
  Advance(milliseconds(1));
  loop_->CutOffAgents([](const std::string&) { return false; }, "keys.txt", now_);
  std::vector<RejectMsg> rejected = link_.Take<RejectMsg>("r1");
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_TRUE(rejected[0].fatal);
  EXPECT_TRUE(loop_->Agents(now_).empty());
  EXPECT_EQ(Job(build.id, 0).state, "pending");
}

TEST_F(AgentLoopTest, ABuildThatFailsCancelsItsOtherPlatforms) {
  Hello("r-x86", "x86", "linux/amd64");
  Hello("r-arm", "arm", "linux/arm64");
  BuildRecord build = Submit({"linux/amd64", "linux/arm64"});
  Advance(milliseconds(1));
  JobResultMsg failed;
  failed.job = {build.jobs[0].id, 1};
  failed.error = "RUN make: exit status 2";
  Frame("r-x86", failed);
  Advance(milliseconds(1));
  EXPECT_EQ(link_.Take<CancelMsg>("r-arm"), (std::vector<CancelMsg>{{{build.jobs[1].id, 1}}}));
  EXPECT_EQ(store_.GetBuild(build.id).value().state, "failed");
  EXPECT_TRUE(loop_->running().empty());
}

TEST_F(AgentLoopTest, HeartbeatsSentBeforeTheAgentReadItsAssignmentDoNotLoseItHoweverLate) {
  Hello("r1", "a1", "linux/amd64");
  BuildRecord build = Submit({"linux/amd64"});
  Advance(milliseconds(1));
  ASSERT_EQ(link_.Take<AssignMsg>("r1").size(), 1u);
  // The loop stalls (a slow database) for seconds, then handles two heartbeats the agent
  // sent before it read the assignment: they do not hold it, and say so by their count.
  now_ += seconds(5);
  Frame("r1", HeartbeatMsg{{}, 0});
  now_ += milliseconds(1);
  Frame("r1", HeartbeatMsg{{}, 0});
  Advance(milliseconds(1));
  EXPECT_TRUE(link_.Take<AssignMsg>("r1").empty());
  EXPECT_EQ(Job(build.id, 0).attempt, 1u);
  EXPECT_EQ(Job(build.id, 0).retries, 0u);
  // The agent read it meanwhile and builds it.
  Frame("r1", HeartbeatMsg{{{build.jobs[0].id, 1}}, 1});
  Advance(milliseconds(1));
  EXPECT_TRUE(link_.Take<AssignMsg>("r1").empty());
  EXPECT_EQ(Job(build.id, 0).retries, 0u);
}

TEST_F(AgentLoopTest, AnAssignmentTheAgentReadButDoesNotHoldIsRetriedAtOnce) {
  Hello("r1", "a1", "linux/amd64");
  BuildRecord build = Submit({"linux/amd64"});
  Advance(milliseconds(1));
  ExpectAssignedOnly("r1", {build.jobs[0].id, 1});
  // Its count covers the assign, yet it does not hold the job (it dropped it).
  Frame("r1", HeartbeatMsg{{}, 1});
  Advance(milliseconds(1));
  ExpectAssignedOnly("r1", {build.jobs[0].id, 2});
  EXPECT_EQ(Job(build.id, 0).retries, 1u);
  // The retry is the session's second assign: a heartbeat that counts one does not lose it.
  Frame("r1", HeartbeatMsg{{}, 1});
  Advance(milliseconds(1));
  EXPECT_TRUE(link_.Take<AssignMsg>("r1").empty());
  EXPECT_EQ(Job(build.id, 0).attempt, 2u);
}

TEST_F(AgentLoopTest, AHeartbeatHoldingAnAttemptThatIsNotCurrentThereCancelsIt) {
  Hello("r1", "a1", "linux/amd64");
  Hello("r2", "a2", "linux/amd64");
  BuildRecord build = Submit({"linux/amd64"});
  Advance(milliseconds(1));
  std::string holder = link_.Take<AssignMsg>("r1").empty() ? "r2" : "r1";
  std::string other = holder == "r1" ? "r2" : "r1";
  JobRef current{build.jobs[0].id, 1};
  link_.Clear();
  // The other agent still runs an attempt the coordinator moved away from it, and one of
  // a job that no longer exists.
  Frame(other, HeartbeatMsg{{current, {999, 4}}});
  Frame(holder, HeartbeatMsg{{current}});
  EXPECT_EQ(link_.Take<CancelMsg>(other), (std::vector<CancelMsg>{{current}, {{999, 4}}}));
  EXPECT_TRUE(link_.Take<CancelMsg>(holder).empty());
  EXPECT_EQ(Job(build.id, 0).state, "assigned");
}

TEST_F(AgentLoopTest, RefusalsUseNoRetryAndTheRefusingAgentWaitsAHeartbeat) {
  Hello("r1", "a1", "linux/amd64");
  BuildRecord build = Submit({"linux/amd64"});
  JobResultMsg refused{{}, false, {}, "agent a1 has no free slot", true, true};
  // More refusals than the job has retries: the build never fails for them.
  for (uint32_t attempt = 1; attempt <= 5; ++attempt) {
    Advance(milliseconds(1001));
    ASSERT_EQ(link_.Take<AssignMsg>("r1").size(), 1u) << "attempt " << attempt;
    refused.job = {build.jobs[0].id, attempt};
    Frame("r1", refused);
    Advance(milliseconds(1));
    // Not straight back to the agent that just refused it.
    EXPECT_TRUE(link_.Take<AssignMsg>("r1").empty());
    Frame("r1", HeartbeatMsg{});
  }
  EXPECT_EQ(Job(build.id, 0).state, "pending");
  EXPECT_EQ(Job(build.id, 0).retries, 0u);
  // Another agent with a free slot takes it at once.
  Hello("r2", "a2", "linux/amd64");
  Advance(milliseconds(1));
  EXPECT_EQ(link_.Take<AssignMsg>("r2").size(), 1u);
  EXPECT_EQ(store_.GetBuild(build.id).value().state, "running");
}

TEST_F(AgentLoopTest, AJobThatLosesEveryAgentFailsWhenItsRetriesAreUsedUp) {
  BuildRecord build = Submit({"linux/amd64"});
  // max_retries is 3: attempts 1-3 are retried, the fourth loss fails the build.
  for (int attempt = 1; attempt <= 4; ++attempt) {
    std::string route = "r" + std::to_string(attempt);
    Hello(route, "a" + std::to_string(attempt), "linux/amd64");
    Advance(milliseconds(1));
    ASSERT_EQ(link_.Take<AssignMsg>(route).size(), 1u) << "attempt " << attempt;
    Frame(route, GoodbyeMsg{});
    Advance(milliseconds(1));
  }
  BuildRecord ended = store_.GetBuild(build.id).value();
  EXPECT_EQ(ended.state, "failed");
  EXPECT_EQ(ended.error,
            "linux/amd64 failed on agent a4 after 4 attempts, its 3 retries after faults outside "
            "the build used up (--max-retries): agent a4 left while building");
}

TEST_F(AgentLoopTest, AnAgentLostWhileTheDatabaseIsAwayHasItsJobRetriedWhenItAnswers) {
  Hello("r1", "a1", "linux/amd64");
  BuildRecord build = Submit({"linux/amd64"});
  Advance(milliseconds(1));
  ASSERT_EQ(link_.Take<AssignMsg>("r1").size(), 1u);
  store_.SetAvailable(false);
  Advance(seconds(4));  // a1 is lost; its job's retry cannot be written
  EXPECT_TRUE(loop_->Agents(now_).empty());
  store_.SetAvailable(true);
  Hello("r2", "a2", "linux/amd64");
  Advance(seconds(1));
  Advance(milliseconds(1));
  std::vector<AssignMsg> moved = link_.Take<AssignMsg>("r2");
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0].job, (JobRef{build.jobs[0].id, 2}));
}

// A write whose answer is lost while the database stays out of reach may have been
// applied: the loop reads its view back once the database answers, whatever it was.
TEST_F(AgentLoopTest, ALastSuccessRecordedUnheardIsMergedOnceTheDatabaseAnswers) {
  Hello("r1", "a1", "linux/amd64");
  BuildRecord build = Submit({"linux/amd64"});
  Advance(milliseconds(1));
  JobRef job{build.jobs[0].id, 1};
  store_.LoseNextAnswer();
  Succeed("r1", job);
  Advance(milliseconds(1));
  Advance(milliseconds(600));
  EXPECT_TRUE(link_.Take<AckMsg>("r1").empty());
  store_.SetAvailable(true);
  Advance(milliseconds(600));  // the result again: no longer current, so only acknowledged
  EXPECT_EQ(link_.Take<AckMsg>("r1"), (std::vector<AckMsg>{{job}}));
  ASSERT_EQ(merges_.size(), 1u);
  EXPECT_EQ(merges_[0].id, build.id);
  EXPECT_TRUE(loop_->running().empty());
}

TEST_F(AgentLoopTest, ARequeueRecordedUnheardPutsTheJobBackInTheQueue) {
  Hello("r1", "a1", "linux/amd64");
  BuildRecord build = Submit({"linux/amd64"});
  Advance(milliseconds(1));
  ASSERT_EQ(link_.Take<AssignMsg>("r1").size(), 1u);
  store_.LoseNextAnswer();
  Frame("r1", JobResultMsg{{build.jobs[0].id, 1}, false, {}, "registry hiccup", true});
  Advance(milliseconds(1));
  Advance(milliseconds(600));
  store_.SetAvailable(true);
  Advance(milliseconds(600));
  Advance(milliseconds(1));
  ExpectAssignedOnly("r1", {build.jobs[0].id, 2});
}

TEST_F(AgentLoopTest, AnAssignmentRecordedUnheardIsRetriedWhenTheAgentShowsItNeverGotIt) {
  Hello("r1", "a1", "linux/amd64");
  store_.LoseNextAnswer();
  BuildRecord build = Submit({"linux/amd64"});
  Advance(milliseconds(1));
  store_.SetAvailable(true);
  for (int beat = 0; beat < 5; ++beat) {  // the first from before it was read back
    Frame("r1", HeartbeatMsg{});
    Advance(seconds(1));
  }
  ExpectAssignedOnly("r1", {build.jobs[0].id, 2});
}

}  // namespace
}  // namespace manifold
