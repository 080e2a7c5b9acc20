// Nothing is lost: what a real farm (ops/farm.sh) does when its pieces fail in the middle of
// a build. Agents are killed, frozen or drained, the coordinator is killed and restarted,
// PostgreSQL and the registry go away and come back, a build is canceled; each time the
// build must end as it should, once, with what was pushed checked by skopeo. Every test has
// its own farm; short heartbeats (500 ms, lost after 3 missed) keep the waits short, and
// examples/slow has a RUN step long enough to act while it runs.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/tar.h"
#include "tests/support/farm.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace manifold::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

long long MillisecondsSince(Clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
}

size_t Count(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

// An agent process stopped (SIGSTOP) as by a pause or a partition; its buildah, a process
// group of its own, builds on. Continued by Thaw() or, also when a test fails, on
// destruction, so the farm can be stopped.
class FrozenProcess {
 public:
  explicit FrozenProcess(pid_t pid) : pid_(pid), frozen_(pid > 0 && kill(pid, SIGSTOP) == 0) {}
  ~FrozenProcess() { Thaw(); }
  bool frozen() const { return frozen_; }
  bool Thaw() {
    if (!frozen_) return false;
    frozen_ = false;
    return kill(pid_, SIGCONT) == 0;
  }

 private:
  pid_t pid_;
  bool frozen_;
};

bool IsFinal(const json& build) {
  if (!build.is_object()) return false;
  std::string state = build.value("state", "");
  return state == "succeeded" || state == "failed" || state == "canceled";
}

// The build's jobs; an empty list if it has none (so a failed read fails the checks on
// them instead of throwing).
json Jobs(const json& build) {
  json jobs = build.is_object() ? build.value("jobs", json::array()) : json::array();
  return jobs.is_array() ? jobs : json::array();
}

// The first job of a build; the tests that look at one job build one platform.
json FirstJob(const json& build) {
  json jobs = Jobs(build);
  return jobs.empty() || !jobs[0].is_object() ? json::object() : jobs[0];
}

uint64_t Attempt(const json& job) { return job.value("attempt", uint64_t{0}); }

// Whether the job's history ("events") has an entry for `attempt` in `state` by `agent`
// whose detail contains `detail`.
bool HasEvent(const json& job, uint64_t attempt, const std::string& state, const std::string& agent,
              const std::string& detail = "") {
  if (!job.contains("events") || !job["events"].is_array()) return false;
  for (const json& event : job["events"]) {
    if (event.value("attempt", uint64_t{0}) == attempt && event.value("state", "") == state &&
        event.value("agent", "") == agent &&
        event.value("detail", "").find(detail) != std::string::npos) {
      return true;
    }
  }
  return false;
}

size_t CountEvents(const json& job, const std::string& state) {
  size_t count = 0;
  if (!job.contains("events") || !job["events"].is_array()) return 0;
  for (const json& event : job["events"]) count += event.value("state", "") == state ? 1 : 0;
  return count;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Processes whose command line names the local image a job's buildah builds
// ("manifold-job-<job>-<attempt>") and that are buildah: what a canceled job leaves behind.
std::vector<std::string> BuildahProcessesFor(const std::string& image) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    std::string pid = entry.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = ReadFile(entry.path().string() + "/cmdline");
    std::vector<std::string> argv;
    std::stringstream parts(cmdline);
    for (std::string arg; std::getline(parts, arg, '\0');) argv.push_back(arg);
    if (argv.empty() || argv[0].find("buildah") == std::string::npos) continue;
    for (const std::string& arg : argv) {
      if (arg == image || arg.rfind(image + ":", 0) == 0) {
        std::string line;
        for (const std::string& a : argv) line += (line.empty() ? "" : " ") + a;
        found.push_back(pid + ": " + line);
        break;
      }
    }
  }
  return found;
}

class LifecycleTest : public ::testing::Test {
 protected:
  // Starts this test's farm with `agents` ("NAME:PLATFORM"); `env` adds to or overrides
  // the short heartbeats.
  void StartFarm(std::vector<std::string> agents, std::map<std::string, std::string> env = {}) {
    FarmOptions options;
    options.agents = agents;
    options.env = {{"MANIFOLD_HEARTBEAT_INTERVAL_MS", "500"}, {"MANIFOLD_MISSED_HEARTBEATS", "3"}};
    for (const auto& [key, value] : env) options.env[key] = value;
    for (const std::string& agent : agents)
      agent_names_.push_back(agent.substr(0, agent.find(':')));
    farm_ = std::make_unique<Farm>(std::move(options));
    Status up = farm_->Up();
    ASSERT_TRUE(up.ok()) << up.message();
  }

  void TearDown() override {
    if (!HasFailure() || !farm_) return;
    std::vector<std::string> names = {"coordinator", "registry"};
    names.insert(names.end(), agent_names_.begin(), agent_names_.end());
    for (const std::string& name : names) {
      std::cerr << "---- " << name << " log ----\n" << farm_->LogTail(name) << "\n";
    }
  }

  std::string Tag(const std::string& repository_and_tag) const {
    return farm_->registry() + "/" + repository_and_tag;
  }

  // Submits examples/EXAMPLE as the CLI does (context upload, then the build) and returns
  // the build's id, or 0 after recording a failure.
  uint64_t Submit(const std::string& example, const std::vector<std::string>& platforms,
                  const std::string& repository_and_tag,
                  const std::map<std::string, std::string>& build_args = {}) {
    std::string dir = SourceDir() + "/examples/" + example;
    std::string context;
    Status tarred = WriteTarFromDirectory(dir, {}, &context);
    EXPECT_TRUE(tarred.ok()) << tarred.message();
    std::string digest = Sha256Digest(context);
    Result<HttpResponse> put = farm_->Api("PUT", "/v1/contexts/" + digest, context);
    EXPECT_TRUE(put.ok() && put->status / 100 == 2)
        << (put.ok() ? put->body : put.status().message());
    json request = {{"platforms", platforms},
                    {"tags", {Tag(repository_and_tag)}},
                    {"context", digest},
                    {"dockerfile", ReadFile(dir + "/Dockerfile")},
                    {"build_args", build_args}};
    Result<HttpResponse> post = farm_->Api("POST", "/v1/builds", request.dump());
    if (!post.ok() || post->status != 201) {
      ADD_FAILURE() << "POST /v1/builds: " << (post.ok() ? post->body : post.status().message());
      return 0;
    }
    json created = json::parse(post->body, nullptr, false);
    return created.is_object() ? created.value("id", uint64_t{0}) : 0;
  }

  json Build(uint64_t id) {
    Result<json> build = farm_->GetBuild(id);
    EXPECT_TRUE(build.ok()) << build.status().message();
    return build.ok() ? *build : json::object();
  }

  // Polls GET /v1/builds/ID until `done` holds, skipping failed answers (the coordinator
  // or its database may be down meanwhile). `last` gets the last build seen.
  bool WaitForBuild(uint64_t id, const std::function<bool(const json&)>& done, milliseconds timeout,
                    json* last) {
    return WaitFor(
        [&] {
          Result<json> build = farm_->GetBuild(id);
          if (!build.ok()) return false;
          *last = *build;
          return done(*last);
        },
        timeout, milliseconds(50));
  }

  // The build's log so far, of one attempt (all attempts if 0), every platform.
  std::string LogText(uint64_t id, uint64_t attempt = 0) {
    std::string text;
    int64_t after = 0;
    for (int page = 0; page < 1000; ++page) {
      Result<HttpResponse> response = farm_->Api(
          "GET", "/v1/builds/" + std::to_string(id) + "/logs?after=" + std::to_string(after));
      if (!response.ok() || response->status != 200) break;
      json body = json::parse(response->body, nullptr, false);
      if (!body.is_object() || !body["chunks"].is_array() || body["chunks"].empty()) break;
      for (const json& chunk : body["chunks"]) {
        if (attempt == 0 || chunk.value("attempt", uint64_t{0}) == attempt) {
          text += chunk.value("data", "");
        }
      }
      after = body.value("next", after);
    }
    return text;
  }

  bool WaitForLog(uint64_t id, const std::string& text, milliseconds timeout) {
    return WaitFor([&] { return LogText(id).find(text) != std::string::npos; }, timeout,
                   milliseconds(100));
  }

  bool WaitForProcessLog(const std::string& name, const std::string& text, milliseconds timeout) {
    return WaitFor([&] { return farm_->Log(name).find(text) != std::string::npos; }, timeout,
                   milliseconds(100));
  }

  std::string AgentState(const std::string& agent) {
    Result<HttpResponse> response = farm_->Api("GET", "/v1/agents");
    if (!response.ok() || response->status != 200) return "";
    json body = json::parse(response->body, nullptr, false);
    if (!body.is_object() || !body["agents"].is_array()) return "";
    for (const json& entry : body["agents"]) {
      if (entry.value("id", "") == agent) return entry.value("state", "");
    }
    return "";
  }

  long ReadyzStatus() {
    Result<HttpResponse> response = farm_->Api("GET", "/readyz");
    return response.ok() ? response->status : 0;
  }

  CommandResult SkopeoRaw(const std::string& repository_and_tag) {
    return RunCommand(
        {"skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + Tag(repository_and_tag)},
        seconds(60));
  }

  // The registry holds an index under the tag whose digest (of the bytes skopeo reads) is
  // the build's index_digest and whose children are the images its jobs reported.
  void ExpectIndexIsTheBuilds(const json& build, const std::string& repository_and_tag) {
    CommandResult raw = SkopeoRaw(repository_and_tag);
    ASSERT_EQ(raw.exit_code, 0) << raw.output;
    json index = json::parse(raw.output, nullptr, false);
    ASSERT_TRUE(index.is_object()) << raw.output;
    EXPECT_EQ(Sha256Digest(raw.output), build.value("index_digest", "")) << build.dump();
    std::multiset<std::string> children, reported;
    for (const json& child : index.value("manifests", json::array())) {
      children.insert(child.value("digest", ""));
    }
    for (const json& job : Jobs(build)) reported.insert(job.value("manifest_digest", ""));
    EXPECT_EQ(children, reported) << raw.output << "\n" << build.dump();
  }

  void ExpectNoIndex(const std::string& repository_and_tag) {
    CommandResult raw = SkopeoRaw(repository_and_tag);
    EXPECT_NE(raw.exit_code, 0) << "an index was pushed: " << raw.output;
    EXPECT_NE(raw.output.find("manifest unknown"), std::string::npos) << raw.output;
  }

  // How often the registry stored a manifest under `tag` of `repository` (its access log).
  size_t ManifestPuts(const std::string& repository, const std::string& tag) {
    return Count(farm_->Log("registry"), "\"PUT /v2/" + repository + "/manifests/" + tag + " ");
  }

  std::unique_ptr<Farm> farm_;
  std::vector<std::string> agent_names_;
};

// 1. An agent dies (SIGKILL, as when its host is lost) in the middle of a build; another
// agent for the platform builds the job again as attempt 2. Then, on the same farm, an
// agent is drained (SIGTERM, an autoscaler's scale-in) mid-build and its job outlasts the
// drain grace: the agent cancels it and says so in a retryable failure, so the other agent
// builds it and the build succeeds.
TEST_F(LifecycleTest, AgentKilledOrDrainedPastItsGraceMidBuildItsJobIsRetriedOnAnotherAgent) {
  ASSERT_NO_FATAL_FAILURE(
      StartFarm({"amd64-1:linux/amd64", "amd64-2:linux/amd64"}, {{"MANIFOLD_DRAIN_GRACE", "2"}}));
  uint64_t id = Submit("slow", {"linux/amd64"}, "slow:killed", {{"SLEEP", "5"}});
  ASSERT_NE(id, 0u);
  ASSERT_TRUE(WaitForLog(id, "start on x86_64", seconds(60))) << LogText(id);
  json job = FirstJob(Build(id));
  ASSERT_EQ(Attempt(job), 1u) << job.dump();
  const std::string first = job.value("agent", "");
  ASSERT_TRUE(first == "amd64-1" || first == "amd64-2") << job.dump();
  const std::string second = first == "amd64-1" ? "amd64-2" : "amd64-1";

  Clock::time_point killed_at = Clock::now();
  Status killed = farm_->Kill(first);
  ASSERT_TRUE(killed.ok()) << killed.message();
  EXPECT_EQ(farm_->Pid(first), 0);

  json build;
  ASSERT_TRUE(WaitForBuild(
      id, [](const json& b) { return Attempt(FirstJob(b)) >= 2; }, seconds(30), &build))
      << build.dump();
  std::cout << "MEASURE: agent SIGKILL -> job assigned again: " << MillisecondsSince(killed_at)
            << " ms (heartbeat 500 ms, lost after 3 missed)" << std::endl;
  EXPECT_EQ(FirstJob(build).value("agent", ""), second) << build.dump();

  ASSERT_TRUE(WaitForBuild(id, IsFinal, seconds(120), &build)) << build.dump();
  EXPECT_EQ(build.value("state", ""), "succeeded") << build.dump();
  job = FirstJob(build);
  EXPECT_EQ(job.value("state", ""), "succeeded");
  EXPECT_EQ(Attempt(job), 2u);
  EXPECT_EQ(job.value("agent", ""), second);
  EXPECT_NE(farm_->Log("coordinator").find("agent " + first + " is lost"), std::string::npos);
  // The job's history says why attempt 1 ended.
  EXPECT_TRUE(HasEvent(job, 1, "retry", first, "was lost")) << job.dump();
  EXPECT_TRUE(HasEvent(job, 2, "assigned", second)) << job.dump();
  EXPECT_TRUE(HasEvent(job, 2, "succeeded", second)) << job.dump();
  ExpectIndexIsTheBuilds(build, "slow:killed");
  // Attempt 1's log is kept; attempt 2 ran the step to its end.
  EXPECT_NE(LogText(id, 1).find("start on x86_64"), std::string::npos) << LogText(id);
  EXPECT_NE(LogText(id, 2).find("end on x86_64"), std::string::npos) << LogText(id);

  Status restarted = farm_->Start(first);
  ASSERT_TRUE(restarted.ok()) << restarted.message();
  uint64_t drained = Submit("slow", {"linux/amd64"}, "slow:drained-away", {{"SLEEP", "6"}});
  ASSERT_NE(drained, 0u);
  ASSERT_TRUE(WaitForLog(drained, "start on x86_64", seconds(60))) << LogText(drained);
  const std::string draining = FirstJob(Build(drained)).value("agent", "");
  ASSERT_TRUE(draining == "amd64-1" || draining == "amd64-2") << Build(drained).dump();
  const std::string other = draining == "amd64-1" ? "amd64-2" : "amd64-1";
  Status stopped = farm_->Stop(draining);  // returns once the agent exited
  EXPECT_TRUE(stopped.ok()) << stopped.message();

  ASSERT_TRUE(WaitForBuild(drained, IsFinal, seconds(120), &build)) << build.dump();
  EXPECT_EQ(build.value("state", ""), "succeeded") << build.dump();
  job = FirstJob(build);
  EXPECT_EQ(Attempt(job), 2u) << job.dump();
  EXPECT_EQ(job.value("agent", ""), other) << job.dump();
  EXPECT_TRUE(HasEvent(job, 1, "retry", draining,
                       "agent " + draining +
                           " drained (SIGTERM or SIGINT) and its grace of 2 s ran out before the "
                           "job finished"))
      << job.dump();
  EXPECT_TRUE(HasEvent(job, 2, "succeeded", other)) << job.dump();
  ExpectIndexIsTheBuilds(build, "slow:drained-away");
  // The retryable failure went out before the goodbye, which ended the agent's session.
  EXPECT_NE(farm_->Log(draining).find("said goodbye to the coordinator"), std::string::npos)
      << farm_->LogTail(draining);
}

// 2. The killed agent comes back at once and says hello without the job it had: the
// coordinator learns from the hello (long before the liveness window would tell it) that
// the attempt is lost, and the job runs again, on the restarted agent, to one result and
// one index.
TEST_F(LifecycleTest, RestartedAgentSaysHelloWithoutItsJobWhichRunsAgainOnce) {
  // 40 missed heartbeats: the agent is only declared lost after 20 s, so a quicker retry
  // can only come from its hello.
  ASSERT_NO_FATAL_FAILURE(
      StartFarm({"amd64-1:linux/amd64"}, {{"MANIFOLD_MISSED_HEARTBEATS", "40"}}));
  uint64_t id = Submit("slow", {"linux/amd64"}, "slow:restarted", {{"SLEEP", "4"}});
  ASSERT_NE(id, 0u);
  ASSERT_TRUE(WaitForLog(id, "start on x86_64", seconds(60))) << LogText(id);
  uint64_t job_id = FirstJob(Build(id)).value("id", uint64_t{0});

  Clock::time_point killed_at = Clock::now();
  Status killed = farm_->Kill("amd64-1");
  ASSERT_TRUE(killed.ok()) << killed.message();
  Status started = farm_->Start("amd64-1");
  ASSERT_TRUE(started.ok()) << started.message();

  json build;
  ASSERT_TRUE(WaitForBuild(
      id, [](const json& b) { return Attempt(FirstJob(b)) >= 2; }, seconds(10), &build))
      << build.dump();
  std::cout << "MEASURE: agent SIGKILL + restart -> job assigned again: "
            << MillisecondsSince(killed_at) << " ms (through its hello; liveness window 20 s)"
            << std::endl;
  EXPECT_EQ(farm_->Log("coordinator").find("is lost"), std::string::npos)
      << "the retry came from the liveness check, not from the hello";

  ASSERT_TRUE(WaitForBuild(id, IsFinal, seconds(120), &build)) << build.dump();
  EXPECT_EQ(build.value("state", ""), "succeeded") << build.dump();
  json job = FirstJob(build);
  EXPECT_EQ(Attempt(job), 2u);
  EXPECT_EQ(job.value("agent", ""), "amd64-1");
  EXPECT_TRUE(HasEvent(job, 1, "retry", "amd64-1", "restarted during the job")) << job.dump();
  EXPECT_EQ(CountEvents(job, "succeeded"), 1u) << job.dump();
  ExpectIndexIsTheBuilds(build, "slow:restarted");
  // Completed once: one result recorded, one index pushed.
  std::string log = farm_->Log("coordinator");
  EXPECT_EQ(Count(log, "job " + std::to_string(job_id) + " attempt 2 succeeded"), 1u) << log;
  EXPECT_EQ(Count(log, "job " + std::to_string(job_id) + " attempt 1 succeeded"), 0u) << log;
  EXPECT_EQ(Count(log, "build " + std::to_string(id) + ": index "), 1u) << log;
  EXPECT_EQ(ManifestPuts("slow", "restarted"), 1u) << farm_->LogTail("registry");
}

// 2b. Stale-result fencing with real processes: an agent frozen mid-build (SIGSTOP, as in a
// network partition) is declared lost and its job retried elsewhere; thawed, it finishes
// attempt 1 and reports it. That late result must change nothing.
TEST_F(LifecycleTest, FrozenAgentsLateResultIsIgnored) {
  ASSERT_NO_FATAL_FAILURE(StartFarm({"amd64-1:linux/amd64", "amd64-2:linux/amd64"}));
  uint64_t id = Submit("slow", {"linux/amd64"}, "slow:frozen", {{"SLEEP", "4"}});
  ASSERT_NE(id, 0u);
  ASSERT_TRUE(WaitForLog(id, "start on x86_64", seconds(60))) << LogText(id);
  json job = FirstJob(Build(id));
  const uint64_t job_id = job.value("id", uint64_t{0});
  const std::string first = job.value("agent", "");
  ASSERT_TRUE(first == "amd64-1" || first == "amd64-2") << job.dump();
  const std::string second = first == "amd64-1" ? "amd64-2" : "amd64-1";

  FrozenProcess frozen(farm_->Pid(first));
  ASSERT_TRUE(frozen.frozen());

  json build;
  ASSERT_TRUE(WaitForBuild(
      id, [](const json& b) { return Attempt(FirstJob(b)) >= 2; }, seconds(30), &build))
      << build.dump();
  EXPECT_EQ(FirstJob(build).value("agent", ""), second) << build.dump();
  ASSERT_TRUE(frozen.Thaw());

  const std::string stale =
      "ignored a stale result for job " + std::to_string(job_id) + " attempt 1 from agent " + first;
  EXPECT_TRUE(WaitForProcessLog("coordinator", stale, seconds(60)))
      << "attempt 1's result never came back: " << farm_->LogTail(first);
  ASSERT_TRUE(WaitForBuild(id, IsFinal, seconds(120), &build)) << build.dump();
  EXPECT_EQ(build.value("state", ""), "succeeded") << build.dump();
  job = FirstJob(build);
  EXPECT_EQ(Attempt(job), 2u);
  EXPECT_EQ(job.value("agent", ""), second);
  EXPECT_TRUE(HasEvent(job, 1, "retry", first, "was lost")) << job.dump();
  EXPECT_EQ(CountEvents(job, "succeeded"), 1u) << job.dump();
  EXPECT_TRUE(HasEvent(job, 2, "succeeded", second)) << job.dump();
  // The job holds the image attempt 2 pushed, and that is what the index lists.
  std::string pushed =
      "job " + std::to_string(job_id) + " attempt 2: pushed " + job.value("manifest_digest", "?");
  EXPECT_NE(farm_->Log(second).find(pushed), std::string::npos) << farm_->LogTail(second);
  ExpectIndexIsTheBuilds(build, "slow:frozen");
  EXPECT_EQ(Count(farm_->Log("coordinator"), "build " + std::to_string(id) + ": index "), 1u);
  EXPECT_EQ(ManifestPuts("slow", "frozen"), 1u) << farm_->LogTail("registry");
}

// The only agent for a platform stops answering past the liveness limit (a pause or a
// partition) while it builds, then comes back: the coordinator has retried the job, and
// the attempt it assigns to the returning agent replaces the old one there, so the build
// succeeds instead of waiting for its job timeout.
TEST_F(LifecycleTest, PartitionedOnlyAgentRunsTheRetriedAttemptWhenItComesBack) {
  ASSERT_NO_FATAL_FAILURE(StartFarm({"amd64-1:linux/amd64"}));
  uint64_t id = Submit("slow", {"linux/amd64"}, "slow:partition", {{"SLEEP", "4"}});
  ASSERT_NE(id, 0u);
  ASSERT_TRUE(WaitForLog(id, "start on x86_64", seconds(60))) << LogText(id);
  const uint64_t job_id = FirstJob(Build(id)).value("id", uint64_t{0});

  FrozenProcess frozen(farm_->Pid("amd64-1"));
  ASSERT_TRUE(frozen.frozen());
  json build;
  ASSERT_TRUE(WaitForBuild(
      id, [](const json& b) { return HasEvent(FirstJob(b), 1, "retry", "amd64-1", "was lost"); },
      seconds(30), &build))
      << build.dump();
  ASSERT_TRUE(frozen.Thaw());

  ASSERT_TRUE(WaitForBuild(id, IsFinal, seconds(120), &build)) << build.dump();
  EXPECT_EQ(build.value("state", ""), "succeeded") << build.dump();
  json job = FirstJob(build);
  EXPECT_EQ(Attempt(job), 2u) << job.dump();
  EXPECT_TRUE(HasEvent(job, 2, "succeeded", "amd64-1")) << job.dump();
  EXPECT_EQ(CountEvents(job, "succeeded"), 1u) << job.dump();
  EXPECT_NE(farm_->Log("amd64-1").find("job " + std::to_string(job_id) +
                                       ": attempt 2 replaces attempt 1"),
            std::string::npos)
      << farm_->LogTail("amd64-1");
  ExpectIndexIsTheBuilds(build, "slow:partition");
}

// 3. The coordinator dies (SIGKILL) while both platforms build. The agents finish and keep
// their results; once it is started again, the build completes and its index is pushed.
TEST_F(LifecycleTest, CoordinatorKilledMidBuildCompletesTheBuildAfterRestart) {
  ASSERT_NO_FATAL_FAILURE(StartFarm({"amd64-1:linux/amd64", "arm64-1:linux/arm64"}));
  // Submitted and followed by the CLI, as CI would; it may give up while the coordinator
  // is away, the build must not.
  TempDir scratch("manifold-cli");
  Subprocess cli;
  ASSERT_TRUE(
      cli.Start({BinaryDir() + "/cli/manifold", "--server", farm_->server_url(), "build",
                 "--platform", "linux/amd64,linux/arm64", "-t", Tag("slow:coordinator"),
                 "--build-arg", "SLEEP=4", "--progress", "quiet", SourceDir() + "/examples/slow"},
                {}, scratch.path() + "/cli.log")
          .ok())
      << "cannot run the manifold CLI";
  uint64_t id = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        Result<HttpResponse> list = farm_->Api("GET", "/v1/builds?limit=1");
        if (!list.ok() || list->status != 200) return false;
        json builds = json::parse(list->body, nullptr, false);
        if (!builds.is_object() || !builds["builds"].is_array() || builds["builds"].empty()) {
          return false;
        }
        id = builds["builds"][0].value("id", uint64_t{0});
        return id != 0;
      },
      seconds(60)))
      << cli.LogTail();
  ASSERT_TRUE(WaitForLog(id, "start on x86_64", seconds(60))) << LogText(id);
  ASSERT_TRUE(WaitForLog(id, "start on aarch64", seconds(90))) << LogText(id);

  Status killed = farm_->Kill("coordinator");
  ASSERT_TRUE(killed.ok()) << killed.message();
  // Both agents finish and push while it is down; their results wait for it.
  EXPECT_TRUE(WaitForProcessLog("amd64-1", ": pushed sha256:", seconds(60)))
      << farm_->LogTail("amd64-1");
  EXPECT_TRUE(WaitForProcessLog("arm64-1", ": pushed sha256:", seconds(90)))
      << farm_->LogTail("arm64-1");

  Clock::time_point restarted_at = Clock::now();
  Status started = farm_->Start("coordinator");
  ASSERT_TRUE(started.ok()) << started.message();
  json build;
  ASSERT_TRUE(WaitForBuild(id, IsFinal, seconds(120), &build)) << build.dump();
  std::cout << "MEASURE: coordinator restart -> build succeeded: "
            << MillisecondsSince(restarted_at) << " ms (attempts:";
  for (const json& job : Jobs(build)) {
    std::cout << " " << job.value("platform", "") << "=" << Attempt(job);
  }
  std::cout << ")" << std::endl;
  EXPECT_EQ(build.value("state", ""), "succeeded") << build.dump();
  // The results the agents held were used: nothing was built twice.
  for (const json& job : Jobs(build)) {
    EXPECT_EQ(Attempt(job), 1u) << job.dump();
  }
  ExpectIndexIsTheBuilds(build, "slow:coordinator");

  int cli_exit = cli.Wait(seconds(60));
  std::cout << "manifold build exited with " << cli_exit << ": " << cli.LogTail(512) << std::endl;
  if (cli_exit == 0) {
    // If it followed the build to the end, it printed the index digest.
    EXPECT_NE(cli.LogTail().find(build.value("index_digest", "?")), std::string::npos);
  }
}

// 4. PostgreSQL stops while a job builds: readiness reports it, the agent's result waits
// until the database is back, and the build completes.
TEST_F(LifecycleTest, DatabaseStoppedMidBuildTheBuildCompletesWhenItIsBack) {
  ASSERT_NO_FATAL_FAILURE(StartFarm({"amd64-1:linux/amd64"}));
  uint64_t id = Submit("slow", {"linux/amd64"}, "slow:database", {{"SLEEP", "4"}});
  ASSERT_NE(id, 0u);
  ASSERT_TRUE(WaitForLog(id, "start on x86_64", seconds(60))) << LogText(id);
  uint64_t job_id = FirstJob(Build(id)).value("id", uint64_t{0});

  Status stopped = farm_->Stop("postgres");
  ASSERT_TRUE(stopped.ok()) << stopped.message();
  EXPECT_TRUE(WaitFor([&] { return ReadyzStatus() == 503; }, seconds(10)))
      << "GET /readyz answers " << ReadyzStatus();
  Result<HttpResponse> health = farm_->Api("GET", "/healthz");
  EXPECT_TRUE(health.ok() && health->status == 200);
  // The job ends while the database is down, so its result cannot be recorded yet.
  EXPECT_TRUE(WaitForProcessLog("amd64-1", "job " + std::to_string(job_id) + " attempt 1: pushed",
                                seconds(60)))
      << farm_->LogTail("amd64-1");
  EXPECT_TRUE(
      WaitForProcessLog("coordinator", "result of job " + std::to_string(job_id), seconds(20)))
      << farm_->LogTail("coordinator");

  Clock::time_point restarted_at = Clock::now();
  Status started = farm_->Start("postgres");
  ASSERT_TRUE(started.ok()) << started.message();
  EXPECT_TRUE(WaitFor([&] { return ReadyzStatus() == 200; }, seconds(30)));
  json build;
  ASSERT_TRUE(WaitForBuild(id, IsFinal, seconds(60), &build)) << build.dump();
  std::cout << "MEASURE: database restart -> build succeeded: " << MillisecondsSince(restarted_at)
            << " ms" << std::endl;
  EXPECT_EQ(build.value("state", ""), "succeeded") << build.dump();
  EXPECT_EQ(Attempt(FirstJob(build)), 1u) << "the finished attempt was lost: " << build.dump();
  ExpectIndexIsTheBuilds(build, "slow:database");
}

// 5. Canceling a running build: it and its jobs end canceled, the agents kill buildah's
// process tree, and no index is pushed.
TEST_F(LifecycleTest, CancelEndsTheBuildAndKillsItsBuildah) {
  ASSERT_NO_FATAL_FAILURE(StartFarm({"amd64-1:linux/amd64", "arm64-1:linux/arm64"}));
  uint64_t id = Submit("slow", {"linux/amd64", "linux/arm64"}, "slow:canceled", {{"SLEEP", "120"}});
  ASSERT_NE(id, 0u);
  ASSERT_TRUE(WaitForLog(id, "start on x86_64", seconds(60))) << LogText(id);
  ASSERT_TRUE(WaitForLog(id, "start on aarch64", seconds(90))) << LogText(id);
  std::vector<std::string> images;
  json running = Build(id);
  for (const json& job : Jobs(running)) {
    images.push_back("manifold-job-" + std::to_string(job.value("id", uint64_t{0})) + "-" +
                     std::to_string(Attempt(job)));
    // The scan below must be able to see them, or their absence would prove nothing.
    EXPECT_FALSE(BuildahProcessesFor(images.back()).empty()) << images.back();
  }
  ASSERT_EQ(images.size(), 2u);

  // Through the CLI, which uses POST /v1/builds/ID/cancel.
  Clock::time_point canceled_at = Clock::now();
  CommandResult canceled = farm_->Manifold({"cancel", std::to_string(id)}, seconds(30));
  ASSERT_EQ(canceled.exit_code, 0) << canceled.output;
  EXPECT_NE(canceled.output.find("canceled"), std::string::npos) << canceled.output;
  json build;
  ASSERT_TRUE(WaitForBuild(id, IsFinal, seconds(10), &build)) << build.dump();
  EXPECT_EQ(build.value("state", ""), "canceled") << build.dump();
  for (const json& job : Jobs(build)) EXPECT_EQ(job.value("state", ""), "canceled") << job.dump();

  std::vector<std::string> left;
  EXPECT_TRUE(WaitFor(
      [&] {
        left.clear();
        for (const std::string& image : images) {
          for (const std::string& process : BuildahProcessesFor(image)) left.push_back(process);
        }
        return left.empty();
      },
      seconds(10), milliseconds(100)))
      << "buildah still runs: " << ::testing::PrintToString(left);
  std::cout << "MEASURE: cancel -> no buildah left: " << MillisecondsSince(canceled_at) << " ms"
            << std::endl;
  ExpectNoIndex("slow:canceled");
}

// `manifold logs -f` attached mid-build prints the lines written before it connected and
// those after, each with its platform; once the build has ended and the coordinator's
// --retention has passed, the build is deleted with its log and `manifold logs` (and
// `manifold cancel`) says so.
TEST_F(LifecycleTest, LogsFollowedMidBuildAreCompleteAndExpireAfterTheRetention) {
  ASSERT_NO_FATAL_FAILURE(
      StartFarm({"amd64-1:linux/amd64", "arm64-1:linux/arm64"}, {{"MANIFOLD_RETENTION", "3s"}}));
  uint64_t id = Submit("slow", {"linux/amd64", "linux/arm64"}, "slow:logs", {{"SLEEP", "6"}});
  ASSERT_NE(id, 0u);
  ASSERT_TRUE(WaitForLog(id, "start on x86_64", seconds(60))) << LogText(id);
  EXPECT_EQ(LogText(id).find("end on x86_64"), std::string::npos) << "attached too late to tell";

  CommandResult followed = farm_->Manifold({"logs", "-f", std::to_string(id)}, seconds(180));
  EXPECT_EQ(followed.exit_code, 0) << followed.output;
  for (const char* line : {"[linux/amd64] start on x86_64", "[linux/amd64] end on x86_64",
                           "[linux/arm64] start on aarch64", "[linux/arm64] end on aarch64"}) {
    EXPECT_NE(followed.output.find(line), std::string::npos) << line << " in\n" << followed.output;
  }
  // In order per platform.
  EXPECT_LT(followed.output.find("[linux/amd64] start on"),
            followed.output.find("[linux/amd64] end on"));
  EXPECT_LT(followed.output.find("[linux/arm64] start on"),
            followed.output.find("[linux/arm64] end on"));

  CommandResult expired;
  EXPECT_TRUE(WaitFor(
      [&] {
        expired = farm_->Manifold({"logs", std::to_string(id)}, seconds(30));
        return expired.exit_code != 0;
      },
      seconds(30), milliseconds(500)))
      << expired.output;
  EXPECT_NE(expired.output.find("was deleted"), std::string::npos) << expired.output;
  EXPECT_NE(expired.output.find("retention of 3 seconds"), std::string::npos) << expired.output;
  // Canceling it says the same, not a bare "no build".
  CommandResult cancel = farm_->Manifold({"cancel", std::to_string(id)}, seconds(30));
  EXPECT_NE(cancel.exit_code, 0) << cancel.output;
  EXPECT_NE(cancel.output.find("was deleted"), std::string::npos) << cancel.output;
}

// 6. SIGTERM drains an agent: its running job finishes and is reported, it takes no new
// job although it has a free slot, and it exits cleanly after saying goodbye. A build
// submitted meanwhile waits and runs once an agent is back.
TEST_F(LifecycleTest, SigtermDrainsTheAgentWhichFinishesItsJobAndTakesNoNewOne) {
  ASSERT_NO_FATAL_FAILURE(
      StartFarm({"amd64-1:linux/amd64"}, {{"MANIFOLD_FARM_SLOTS", "2"},
                                          {"MANIFOLD_DRAIN_GRACE", "60"},
                                          {"MANIFOLD_FARM_STOP_TIMEOUT", "90"}}));
  uint64_t first = Submit("slow", {"linux/amd64"}, "slow:drained", {{"SLEEP", "5"}});
  ASSERT_NE(first, 0u);
  ASSERT_TRUE(WaitForLog(first, "start on x86_64", seconds(60))) << LogText(first);

  // farm.sh stop returns once the agent exited; the test watches the drain meanwhile (Stop
  // only runs the script, so it may run beside the API calls below).
  std::future<Status> stopping =
      std::async(std::launch::async, [this] { return farm_->Stop("amd64-1"); });
  ASSERT_TRUE(WaitFor([&] { return AgentState("amd64-1") == "draining"; }, seconds(10)))
      << "amd64-1 never reported draining after SIGTERM (state '" << AgentState("amd64-1") << "')";
  uint64_t second = Submit("hello", {"linux/amd64"}, "hello:during-drain");
  ASSERT_NE(second, 0u);

  // Until the agent is gone, the second build's job is never assigned.
  json queued;
  bool assigned_while_draining = false;
  ASSERT_TRUE(WaitFor(
      [&] {
        Result<json> build = farm_->GetBuild(second);
        if (build.ok()) {
          queued = *build;
          if (Attempt(FirstJob(queued)) != 0) assigned_while_draining = true;
        }
        return stopping.wait_for(milliseconds(0)) == std::future_status::ready;
      },
      seconds(90), milliseconds(100)));
  EXPECT_FALSE(assigned_while_draining) << queued.dump();
  Status stopped = stopping.get();
  EXPECT_TRUE(stopped.ok()) << "the agent did not exit by itself: " << stopped.message();
  EXPECT_EQ(farm_->Pid("amd64-1"), 0);
  std::string agent_log = farm_->Log("amd64-1");
  EXPECT_NE(agent_log.find("said goodbye to the coordinator"), std::string::npos) << agent_log;
  EXPECT_EQ(agent_log.find("[critical]"), std::string::npos) << agent_log;
  EXPECT_NE(farm_->Log("coordinator").find("agent amd64-1 said goodbye"), std::string::npos);

  // Its result was acknowledged before it left; the index push may still be under way.
  json build;
  ASSERT_TRUE(WaitForBuild(first, IsFinal, seconds(60), &build)) << build.dump();
  EXPECT_EQ(build.value("state", ""), "succeeded") << build.dump();
  json job = FirstJob(build);
  EXPECT_EQ(job.value("agent", ""), "amd64-1");
  EXPECT_EQ(Attempt(job), 1u);
  ExpectIndexIsTheBuilds(build, "slow:drained");

  json waiting = Build(second);
  EXPECT_EQ(FirstJob(waiting).value("state", ""), "pending") << waiting.dump();
  EXPECT_EQ(Attempt(FirstJob(waiting)), 0u) << waiting.dump();
  Status started = farm_->Start("amd64-1");
  ASSERT_TRUE(started.ok()) << started.message();
  ASSERT_TRUE(WaitForBuild(second, IsFinal, seconds(60), &build)) << build.dump();
  EXPECT_EQ(build.value("state", ""), "succeeded") << build.dump();
  EXPECT_EQ(Attempt(FirstJob(build)), 1u);
}

// 7. A build error is final: the same Dockerfile would fail again. A registry outage is
// not: the push fails retryably and the job is built again once the registry is back.
TEST_F(LifecycleTest, BuildErrorIsNotRetriedButRegistryOutageIs) {
  ASSERT_NO_FATAL_FAILURE(StartFarm({"amd64-1:linux/amd64", "arm64-1:linux/arm64"}));
  uint64_t failing = Submit("failing", {"linux/arm64"}, "failing:latest");
  ASSERT_NE(failing, 0u);
  json build;
  ASSERT_TRUE(WaitForBuild(failing, IsFinal, seconds(120), &build)) << build.dump();
  EXPECT_EQ(build.value("state", ""), "failed") << build.dump();
  json job = FirstJob(build);
  EXPECT_EQ(job.value("state", ""), "failed");
  EXPECT_EQ(Attempt(job), 1u) << build.dump();
  EXPECT_NE(job.value("error", "").find("exited with status 3"), std::string::npos) << job.dump();
  EXPECT_EQ(CountEvents(job, "retry"), 0u) << job.dump();
  ExpectNoIndex("failing:latest");

  uint64_t id = Submit("slow", {"linux/amd64"}, "slow:registry", {{"SLEEP", "4"}});
  ASSERT_NE(id, 0u);
  ASSERT_TRUE(WaitForLog(id, "start on x86_64", seconds(60))) << LogText(id);
  Status stopped = farm_->Stop("registry");
  ASSERT_TRUE(stopped.ok()) << stopped.message();
  // Attempt 1's push fails; the failure is retryable, so the job is assigned again.
  ASSERT_TRUE(WaitForBuild(
      id, [](const json& b) { return Attempt(FirstJob(b)) >= 2 || IsFinal(b); }, seconds(60),
      &build))
      << build.dump();
  Status started = farm_->Start("registry");
  ASSERT_TRUE(started.ok()) << started.message();
  ASSERT_TRUE(WaitForBuild(id, IsFinal, seconds(120), &build)) << build.dump();
  EXPECT_EQ(build.value("state", ""), "succeeded") << build.dump();
  job = FirstJob(build);
  EXPECT_EQ(Attempt(job), 2u) << build.dump();
  EXPECT_EQ(job.value("agent", ""), "amd64-1");
  EXPECT_TRUE(HasEvent(job, 1, "retry", "amd64-1", "pushing the linux/amd64 image")) << job.dump();
  EXPECT_NE(LogText(id, 1).find("failed: pushing the linux/amd64 image"), std::string::npos)
      << LogText(id, 1);
  ExpectIndexIsTheBuilds(build, "slow:registry");
}

}  // namespace
}  // namespace manifold::test
