// `manifold build` end to end against a scripted coordinator on 127.0.0.1: local checks,
// context upload, submission, following logs and job states, and the result.
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "cli/build.h"
#include "cli/build_status.h"
#include "cli/follow.h"
#include "cli/logs.h"
#include "common/digest.h"

namespace manifold {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kAmd64Digest = "sha256:" + std::string(64, '1');
const std::string kArm64Digest = "sha256:" + std::string(64, '2');
const std::string kIndexDigest = "sha256:" + std::string(64, 'f');

// A coordinator that walks build 7 through a scripted list of snapshots, one per
// GET /v1/builds/7, and releases log chunks as the snapshots advance.
class ScriptedCoordinator {
 public:
  struct Step {
    json build;
    std::vector<json> new_chunks;  // become visible with this snapshot
  };

  explicit ScriptedCoordinator(std::vector<Step> steps) : steps_(std::move(steps)) {
    server_.Get(R"(/v1/contexts/(.+))",
                [this](const httplib::Request& req, httplib::Response& res) {
                  std::lock_guard lock(mu_);
                  res.status = contexts_.count(req.matches[1]) ? 200 : 404;
                });
    server_.Put(R"(/v1/contexts/(.+))",
                [this](const httplib::Request& req, httplib::Response& res) {
                  std::lock_guard lock(mu_);
                  ++uploads_;
                  if (Sha256Digest(req.body) != req.matches[1]) {
                    res.status = 400;
                    res.set_content(R"({"error": "digest mismatch"})", "application/json");
                    return;
                  }
                  contexts_.insert(req.matches[1]);
                  res.status = 201;
                });
    server_.Post("/v1/builds", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      ++submissions_;
      submitted_ = json::parse(req.body);
      if (forget_context_at_submission_) {
        // Collected between the CLI's check and its submission, as the coordinator does.
        forget_context_at_submission_ = false;
        contexts_.erase(submitted_["context"].get<std::string>());
      }
      if (!contexts_.count(submitted_["context"].get<std::string>())) {
        res.status = 400;
        res.set_content(R"({"error": "field \"context\": the coordinator has no context"})",
                        "application/json");
        return;
      }
      idempotency_key_ = req.get_header_value("Idempotency-Key");
      res.status = 201;
      res.set_content(steps_[0].build.dump(), "application/json");
    });
    server_.Get(R"(/v1/builds/7)", [this](const httplib::Request&, httplib::Response& res) {
      std::lock_guard lock(mu_);
      if (current_ + 1 < steps_.size() && polled_) ++current_;
      polled_ = true;
      for (size_t i = released_; i <= current_; ++i) {
        for (json chunk : steps_[i].new_chunks) {
          chunk["seq"] = static_cast<int64_t>(chunks_.size() + 1);
          chunks_.push_back(chunk);
        }
      }
      released_ = current_ + 1;
      res.set_content(steps_[current_].build.dump(), "application/json");
    });
    server_.Get(R"(/v1/builds/7/logs)", [this](const httplib::Request& req,
                                               httplib::Response& res) {
      std::lock_guard lock(mu_);
      int64_t after = std::stoll(req.get_param_value("after"));
      json page = {{"chunks", json::array()}, {"next", after}};
      // Two chunks per answer, so that following must page.
      for (const json& chunk : chunks_) {
        if (chunk["seq"].get<int64_t>() > after && page["chunks"].size() < 2) {
          page["chunks"].push_back(chunk);
          page["next"] = chunk["seq"];
        }
      }
      std::string state = steps_[current_].build["state"];
      bool final = state == "succeeded" || state == "failed" || state == "canceled";
      page["done"] = final && page["next"].get<int64_t>() == static_cast<int64_t>(chunks_.size());
      res.set_content(page.dump(), "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  ~ScriptedCoordinator() {
    server_.stop();
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int uploads() {
    std::lock_guard lock(mu_);
    return uploads_;
  }
  int submissions() {
    std::lock_guard lock(mu_);
    return submissions_;
  }
  void ForgetContextAtNextSubmission() {
    std::lock_guard lock(mu_);
    forget_context_at_submission_ = true;
  }
  json submitted() {
    std::lock_guard lock(mu_);
    return submitted_;
  }
  std::string idempotency_key() {
    std::lock_guard lock(mu_);
    return idempotency_key_;
  }

 private:
  std::mutex mu_;
  std::vector<Step> steps_;
  size_t current_ = 0;
  size_t released_ = 0;
  bool polled_ = false;
  std::vector<json> chunks_;
  std::set<std::string> contexts_;
  int uploads_ = 0;
  int submissions_ = 0;
  bool forget_context_at_submission_ = false;
  json submitted_;
  std::string idempotency_key_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

json Job(int64_t id, const std::string& platform, const std::string& state,
         const std::string& agent = "", bool emulated = false, const std::string& digest = "",
         const std::string& error = "") {
  return {{"id", id},       {"platform", platform}, {"state", state}, {"attempt", 1},
          {"agent", agent}, {"emulated", emulated}, {"error", error}, {"manifest_digest", digest}};
}

json Build(const std::string& state, std::vector<json> jobs, const std::string& index = "",
           const std::string& error = "") {
  return {{"id", 7},
          {"state", state},
          {"platforms", {"linux/amd64", "linux/arm64"}},
          {"tags", {"127.0.0.1:5000/hello:latest", "127.0.0.1:5000/hello:1"}},
          {"index_digest", index},
          {"index_media_type", index.empty() ? "" : "application/vnd.oci.image.index.v1+json"},
          {"error", error},
          {"jobs", jobs}};
}

json Chunk(const std::string& platform, const std::string& data) {
  return {{"platform", platform}, {"attempt", 1}, {"data", data}};
}

std::vector<ScriptedCoordinator::Step> SucceedingScript() {
  return {
      {Build("queued", {Job(1, "linux/amd64", "pending"), Job(2, "linux/arm64", "pending")}), {}},
      {Build("running", {Job(1, "linux/amd64", "assigned", "host-a"),
                         Job(2, "linux/arm64", "assigned", "host-b", true)}),
       {}},
      {Build("running", {Job(1, "linux/amd64", "building", "host-a"),
                         Job(2, "linux/arm64", "building", "host-b", true)}),
       {Chunk("linux/arm64", "STEP 1/2: FR"), Chunk("linux/amd64", "STEP 1/2: FROM busybox\n"),
        Chunk("linux/arm64", "OM busybox\nSTEP 2/2: RUN uname -m\n")}},
      {Build("merging", {Job(1, "linux/amd64", "succeeded", "host-a", false, kAmd64Digest),
                         Job(2, "linux/arm64", "succeeded", "host-b", true, kArm64Digest)}),
       {Chunk("linux/amd64", "STEP 2/2: RUN uname -m\nx86_64\n"), Chunk("linux/arm64", "aarch64")}},
      {Build("succeeded",
             {Job(1, "linux/amd64", "succeeded", "host-a", false, kAmd64Digest),
              Job(2, "linux/arm64", "succeeded", "host-b", true, kArm64Digest)},
             kIndexDigest),
       {}},
  };
}

class BuildCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cli_build_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "ctx" / "src");
    std::ofstream(dir_ / "ctx" / "Dockerfile") << "FROM busybox\nRUN uname -m\n";
    std::ofstream(dir_ / "ctx" / "src" / "main.c") << "int main() { return 0; }\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  BuildOptions Options(const std::string& server) {
    BuildOptions options;
    options.server = server;
    options.platforms = {"linux/amd64,linux/arm64"};
    options.tags = {"127.0.0.1:5000/hello:latest", "127.0.0.1:5000/hello:1"};
    options.context_dir = (dir_ / "ctx").string();
    options.poll_interval = std::chrono::milliseconds(1);
    options.unavailable_grace = std::chrono::milliseconds(100);
    return options;
  }

  int Run(const BuildOptions& options) {
    out_.str("");
    err_.str("");
    EnvLookup env = [](const std::string& name) -> std::optional<std::string> {
      if (name == "FROM_ENV") return "env value";
      return std::nullopt;
    };
    return RunBuild(options, env, &out_, &err_);
  }

  fs::path dir_;
  std::ostringstream out_;
  std::ostringstream err_;
};

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST_F(BuildCommandTest, SucceedsAndPrintsProgressThenTheDigest) {
  ScriptedCoordinator coordinator(SucceedingScript());
  BuildOptions options = Options(coordinator.url());
  options.build_args = {"A=1", "FROM_ENV", "NOT_SET"};
  options.target = "final";
  options.idempotency_key = "ci-42";
  options.metadata_file = (dir_ / "metadata.json").string();
  ASSERT_EQ(Run(options), 0) << err_.str();
  EXPECT_EQ(err_.str(), "");

  std::vector<std::string> lines = Lines(out_.str());
  ASSERT_GE(lines.size(), 3u) << out_.str();
  EXPECT_TRUE(lines[0].starts_with("context: ")) << lines[0];
  EXPECT_NE(lines[0].find(" bytes ("), std::string::npos) << lines[0];
  EXPECT_EQ(lines[1], "context uploaded");
  EXPECT_EQ(lines[2], "build 7 submitted");
  EXPECT_EQ(lines.back(), kIndexDigest);
  EXPECT_EQ(
      lines[lines.size() - 2],
      "index " + kIndexDigest + " pushed to 127.0.0.1:5000/hello:latest, 127.0.0.1:5000/hello:1");
  std::vector<std::string> expected_in_order = {
      "[linux/amd64] waiting for an agent",
      "[linux/amd64] job assigned to agent host-a",
      "[linux/arm64] job assigned to agent host-b (emulated)",
      "[linux/amd64] building on agent host-a",
      "[linux/amd64] STEP 1/2: FROM busybox",
      "[linux/arm64] STEP 1/2: FROM busybox",
      "[linux/arm64] STEP 2/2: RUN uname -m",
      "[linux/amd64] STEP 2/2: RUN uname -m",
      "[linux/amd64] x86_64",
      "[linux/amd64] pushed " + kAmd64Digest,
      "[linux/arm64] pushed " + kArm64Digest,
      "[build] every platform is pushed; pushing the image index",
      "[linux/arm64] aarch64",  // the partial last line, flushed when the build ended
  };
  size_t at = 0;
  for (const std::string& line : lines) {
    if (at < expected_in_order.size() && line == expected_in_order[at]) ++at;
  }
  EXPECT_EQ(at, expected_in_order.size())
      << "missing in order: " << expected_in_order[std::min(at, expected_in_order.size() - 1)]
      << "\n"
      << out_.str();

  json submitted = coordinator.submitted();
  EXPECT_EQ(submitted["platforms"], json({"linux/amd64", "linux/arm64"}));
  EXPECT_EQ(submitted["tags"], json({"127.0.0.1:5000/hello:latest", "127.0.0.1:5000/hello:1"}));
  EXPECT_EQ(submitted["dockerfile"], "FROM busybox\nRUN uname -m\n");
  EXPECT_EQ(submitted["dockerfile_path"], "Dockerfile");
  EXPECT_EQ(submitted["build_args"], json({{"A", "1"}, {"FROM_ENV", "env value"}}));
  EXPECT_EQ(submitted["target"], "final");
  EXPECT_TRUE(IsValidDigest(submitted["context"].get<std::string>()));
  EXPECT_EQ(coordinator.idempotency_key(), "ci-42");
  EXPECT_EQ(coordinator.uploads(), 1);

  std::ifstream metadata_file(options.metadata_file);
  json metadata = json::parse(metadata_file);
  EXPECT_EQ(metadata["containerimage.digest"], kIndexDigest);
  EXPECT_EQ(metadata["image.name"], "127.0.0.1:5000/hello:latest,127.0.0.1:5000/hello:1");
  EXPECT_EQ(metadata["manifold.build.id"], 7);
}

TEST_F(BuildCommandTest, SkipsTheUploadOfAContextTheCoordinatorHas) {
  ScriptedCoordinator coordinator(SucceedingScript());
  ASSERT_EQ(Run(Options(coordinator.url())), 0) << err_.str();
  std::string first_context = coordinator.submitted()["context"];
  ASSERT_EQ(Run(Options(coordinator.url())), 0) << err_.str();
  EXPECT_EQ(coordinator.uploads(), 1);
  EXPECT_EQ(coordinator.submitted()["context"], first_context);  // the tar is deterministic
  EXPECT_EQ(Lines(out_.str())[1], "context already on the coordinator") << out_.str();
}

// The coordinator may collect a context between the CLI's check and its submission (its
// garbage collection, or a damaged file found at the submission). The CLI uploads it again
// and submits once more, under the same idempotency key, instead of failing the CI job.
TEST_F(BuildCommandTest, UploadsAgainAContextCollectedBeforeTheSubmission) {
  ScriptedCoordinator coordinator(SucceedingScript());
  ASSERT_EQ(Run(Options(coordinator.url())), 0) << err_.str();
  coordinator.ForgetContextAtNextSubmission();
  BuildOptions options = Options(coordinator.url());
  options.idempotency_key = "ci-run-42";
  ASSERT_EQ(Run(options), 0) << err_.str();
  EXPECT_EQ(coordinator.uploads(), 2);
  EXPECT_EQ(coordinator.submissions(), 3);
  EXPECT_EQ(coordinator.idempotency_key(), "ci-run-42");
}

TEST_F(BuildCommandTest, QuietPrintsOnlyTheDigest) {
  ScriptedCoordinator coordinator(SucceedingScript());
  BuildOptions options = Options(coordinator.url());
  options.progress = "quiet";
  ASSERT_EQ(Run(options), 0) << err_.str();
  EXPECT_EQ(out_.str(), kIndexDigest + "\n");
}

TEST_F(BuildCommandTest, FailedBuildExitsOneWithTheReason) {
  ScriptedCoordinator coordinator({
      {Build("running", {Job(1, "linux/amd64", "building", "host-a"),
                         Job(2, "linux/arm64", "building", "host-b")}),
       {Chunk("linux/arm64", "RUN false\n")}},
      {Build("failed",
             {Job(1, "linux/amd64", "canceled", "host-a"),
              Job(2, "linux/arm64", "failed", "host-b", false, "", "RUN false: exit status 1")}),
       {}},
  });
  BuildOptions options = Options(coordinator.url());
  options.metadata_file = (dir_ / "metadata.json").string();
  EXPECT_EQ(Run(options), 1);
  EXPECT_EQ(err_.str(), "manifold: build 7 failed: linux/arm64: RUN false: exit status 1\n");
  EXPECT_NE(out_.str().find("[linux/arm64] failed: RUN false: exit status 1\n"), std::string::npos)
      << out_.str();
  EXPECT_FALSE(fs::exists(options.metadata_file));
}

TEST_F(BuildCommandTest, CanceledBuildExitsOne) {
  ScriptedCoordinator coordinator(
      std::vector<ScriptedCoordinator::Step>{{Build("canceled", json::array()), {}}});
  EXPECT_EQ(Run(Options(coordinator.url())), 1);
  EXPECT_EQ(err_.str(), "manifold: build 7 was canceled\n");
}

TEST_F(BuildCommandTest, LocalMistakesFailBeforeAnyRequest) {
  // No coordinator listens: every case must fail on its own check, not on the network.
  BuildOptions base = Options("http://127.0.0.1:1");
  struct Case {
    std::function<void(BuildOptions*)> change;
    std::string error;
  };
  std::vector<Case> cases = {
      {[](BuildOptions* o) { o->platforms = {"linux/amd64,linux/sparc"}; },
       "manifold: invalid platform \"linux/sparc\": "},
      {[](BuildOptions* o) { o->tags.clear(); }, "manifold: no tag given: "},
      {[](BuildOptions* o) { o->tags.push_back("Hello:latest"); },
       "manifold: invalid image reference \"Hello:latest\""},
      {[](BuildOptions* o) { o->tags = {"127.0.0.1:5000/a@sha256:" + std::string(64, '0')}; },
       "manifold: invalid tag "},
      {[this](BuildOptions* o) { o->context_dir = (dir_ / "missing").string(); },
       "manifold: build context " + (dir_ / "missing").string() + " does not exist"},
      {[this](BuildOptions* o) { o->context_dir = (dir_ / "ctx" / "Dockerfile").string(); },
       "manifold: build context " + (dir_ / "ctx" / "Dockerfile").string() + " is not a directory"},
      {[this](BuildOptions* o) { o->context_dir = (dir_ / "ctx" / "src").string(); },
       "manifold: cannot read Dockerfile " + (dir_ / "ctx" / "src" / "Dockerfile").string() +
           ": No such file or directory (use -f to name another)"},
      {[this](BuildOptions* o) { o->dockerfile = (dir_ / "ctx" / "src").string(); },
       "manifold: cannot read Dockerfile " + (dir_ / "ctx" / "src").string() +
           ": it is a directory (use -f to name another)"},
      {[](BuildOptions* o) { o->build_args = {"=V"}; }, "manifold: invalid --build-arg \"=V\""},
      {[](BuildOptions* o) { o->progress = "fancy"; }, "manifold: invalid --progress \"fancy\""},
      {[](BuildOptions* o) { o->labels = {"=x"}; }, "manifold: invalid --label \"=x\""},
      {[](BuildOptions* o) { o->annotations = {"index-descriptor:k=v"}; },
       "manifold: invalid --annotation \"index-descriptor:k=v\": index-descriptor annotations "
       "are not supported"},
      {[](BuildOptions* o) { o->dockerfile = "-"; },
       "manifold: -f - needs the Dockerfile on stdin"},
      {[](BuildOptions* o) { o->secrets = {"id=npmrc,env=UNSET"}; },
       "manifold: --secret id=npmrc: the environment variable UNSET is not set"},
  };
  for (const Case& c : cases) {
    BuildOptions options = base;
    c.change(&options);
    EXPECT_EQ(Run(options), 1) << c.error;
    EXPECT_EQ(err_.str().rfind(c.error, 0), 0u) << "want: " << c.error << "\ngot: " << err_.str();
    EXPECT_EQ(out_.str(), "");
  }
}

TEST_F(BuildCommandTest, UnreachableCoordinator) {
  EXPECT_EQ(Run(Options("http://127.0.0.1:1")), 1);
  EXPECT_EQ(err_.str().rfind("manifold: cannot reach the coordinator at http://127.0.0.1:1: ", 0),
            0u)
      << err_.str();
}

TEST_F(BuildCommandTest, DockerfileOutsideTheContext) {
  ScriptedCoordinator coordinator(SucceedingScript());
  std::ofstream(dir_ / "other.Dockerfile") << "FROM scratch\n";
  BuildOptions options = Options(coordinator.url());
  options.dockerfile = (dir_ / "other.Dockerfile").string();
  ASSERT_EQ(Run(options), 0) << err_.str();
  EXPECT_EQ(coordinator.submitted()["dockerfile"], "FROM scratch\n");
  EXPECT_EQ(coordinator.submitted()["dockerfile_path"], "other.Dockerfile");

  options.dockerfile = (dir_ / "ctx" / "src" / ".." / "src" / "main.c").string();
  ASSERT_EQ(Run(options), 0) << err_.str();
  EXPECT_EQ(coordinator.submitted()["dockerfile_path"], "src/main.c");
}

TEST_F(BuildCommandTest, SendsLabelsAnnotationsCacheAndPullOptions) {
  ScriptedCoordinator coordinator(SucceedingScript());
  BuildOptions options = Options(coordinator.url());
  options.labels = {"org.example.team=builds", "empty"};
  options.annotations = {"org.example.a=on manifests", "manifest:org.example.b=2",
                         "index:org.example.c=3", "manifest,index:org.example.d=both"};
  options.no_cache = true;
  options.pull = true;
  ASSERT_EQ(Run(options), 0) << err_.str();
  json submitted = coordinator.submitted();
  EXPECT_EQ(submitted["labels"], json({{"org.example.team", "builds"}, {"empty", ""}}));
  EXPECT_EQ(
      submitted["manifest_annotations"],
      json({{"org.example.a", "on manifests"}, {"org.example.b", "2"}, {"org.example.d", "both"}}));
  EXPECT_EQ(submitted["index_annotations"],
            json({{"org.example.c", "3"}, {"org.example.d", "both"}}));
  EXPECT_EQ(submitted["no_cache"], true);
  EXPECT_EQ(submitted["pull"], true);
  // Not a git work tree: no source or revision is claimed.
  EXPECT_FALSE(submitted.contains("source")) << submitted.dump();
  EXPECT_FALSE(submitted.contains("revision")) << submitted.dump();
}

TEST_F(BuildCommandTest, SendsNetworkEntitlementsAndJobLimits) {
  ScriptedCoordinator coordinator(SucceedingScript());
  BuildOptions options = Options(coordinator.url());
  ASSERT_EQ(Run(options), 0) << err_.str();
  // The defaults are sent as nothing: the coordinator's "default" network and the agent's
  // limits.
  for (const char* field : {"network", "entitlements", "limits"}) {
    EXPECT_FALSE(coordinator.submitted().contains(field)) << coordinator.submitted().dump();
  }

  options.network = "host";
  options.allow = {"network.host", "network.host"};
  options.job_memory = "1.5g";
  options.job_cpus = "0.5";
  options.job_pids = 200;
  options.job_disk = "10G";
  ASSERT_EQ(Run(options), 0) << err_.str();
  json submitted = coordinator.submitted();
  EXPECT_EQ(submitted["network"], "host");
  EXPECT_EQ(submitted["entitlements"], json({"network.host"}));
  EXPECT_EQ(submitted["limits"], json({{"memory_bytes", 1610612736},
                                       {"cpu_millis", 500},
                                       {"pids", 200},
                                       {"disk_bytes", 10737418240}}));

  options = Options(coordinator.url());
  options.network = "none";
  options.job_cpus = "2";
  ASSERT_EQ(Run(options), 0) << err_.str();
  EXPECT_EQ(coordinator.submitted()["network"], "none");
  EXPECT_EQ(coordinator.submitted()["limits"], json({{"cpu_millis", 2000}}));
}

// Each is refused before the context is uploaded, with what to change.
TEST_F(BuildCommandTest, RefusesHostNetworkWithoutTheEntitlementAndBadLimitsLocally) {
  ScriptedCoordinator coordinator(SucceedingScript());
  const std::pair<std::function<void(BuildOptions&)>, std::string> cases[] = {
      {[](BuildOptions& o) { o.network = "host"; },
       "--network host needs the network.host entitlement: add --allow network.host to the "
       "build (\"entitlements\": [\"network.host\"] in the API); the agent must also run "
       "with --allow-insecure-entitlement network.host"},
      {[](BuildOptions& o) { o.allow = {"security.insecure"}; },
       "entitlement \"security.insecure\" is not supported: build steps never run privileged "
       "here; the only entitlement is network.host"},
      {[](BuildOptions& o) { o.job_memory = "lots"; },
       "--job-memory \"lots\" is not a size: write bytes or a number with k, m, g, t or p "
       "(binary units, as docker's), e.g. 512m or 1.5g"},
      {[](BuildOptions& o) { o.job_cpus = "1.5x"; },
       "--job-cpus \"1.5x\" is not a number of CPUs: a decimal with at most three places, "
       "e.g. 2 or 1.5"},
  };
  for (const auto& [change, message] : cases) {
    BuildOptions options = Options(coordinator.url());
    change(options);
    EXPECT_EQ(Run(options), 1);
    EXPECT_EQ(err_.str(), "manifold: " + message + "\n");
  }
  EXPECT_EQ(coordinator.uploads(), 0);
}

TEST_F(BuildCommandTest, SendsSecretsInBase64OnlyToATlsOrLocalCoordinator) {
  ScriptedCoordinator coordinator(SucceedingScript());
  BuildOptions options = Options(coordinator.url());
  options.secrets = {"id=from_env,env=FROM_ENV"};
  ASSERT_EQ(Run(options), 0) << err_.str();
  EXPECT_EQ(coordinator.submitted()["secrets"], json({{"from_env", "ZW52IHZhbHVl"}}));
  EXPECT_EQ(out_.str().find("env value"), std::string::npos);

  // Off this host, plain HTTP would show the secret to the network: refused before any
  // request (nothing listens there).
  options.server = "http://192.0.2.1:7080";
  EXPECT_EQ(Run(options), 1);
  EXPECT_EQ(err_.str(),
            "manifold: refusing to send build secrets over plain HTTP to http://192.0.2.1:7080, "
            "which is not on this host; use the coordinator's https:// address\n");
}

TEST_F(BuildCommandTest, PlatformListsWithVariantsAreNormalisedAsBuildx) {
  ScriptedCoordinator coordinator(SucceedingScript());
  BuildOptions options = Options(coordinator.url());
  options.platforms = {"linux/arm64/v8,linux/arm/v7", "linux/arm", "linux/amd64"};
  ASSERT_EQ(Run(options), 0) << err_.str();
  // arm64/v8 is arm64; a bare linux/arm is arm/v7, the same platform as the one before.
  EXPECT_EQ(coordinator.submitted()["platforms"],
            json({"linux/arm64", "linux/arm/v7", "linux/amd64"}));
}

TEST_F(BuildCommandTest, ReadsTheDockerfileFromStdinWithDashF) {
  ScriptedCoordinator coordinator(SucceedingScript());
  BuildOptions options = Options(coordinator.url());
  options.dockerfile = "-";
  std::istringstream in("FROM scratch\nLABEL from=stdin\n");
  options.dockerfile_stdin = &in;
  ASSERT_EQ(Run(options), 0) << err_.str();
  EXPECT_EQ(coordinator.submitted()["dockerfile"], "FROM scratch\nLABEL from=stdin\n");
  EXPECT_EQ(coordinator.submitted()["dockerfile_path"], "-");

  std::istringstream empty("\n  \n");
  options.dockerfile_stdin = &empty;
  EXPECT_EQ(Run(options), 1);
  EXPECT_EQ(err_.str().rfind("manifold: the Dockerfile read from stdin (-f -) is empty", 0), 0u)
      << err_.str();
}

TEST_F(BuildCommandTest, WarnsAboutALargeContextAndRefusesOneAboveTheLimit) {
  ScriptedCoordinator coordinator(SucceedingScript());
  fs::create_directories(dir_ / "ctx" / "data");
  std::ofstream(dir_ / "ctx" / "data" / "big.bin") << std::string(300 * 1024, 'x');
  std::ofstream(dir_ / "ctx" / "model.bin") << std::string(100 * 1024, 'y');
  BuildOptions options = Options(coordinator.url());
  options.context_warn_bytes = 200 * 1024;
  ASSERT_EQ(Run(options), 0) << err_.str();
  EXPECT_EQ(
      err_.str().rfind("manifold: warning: the build context is 405.0 KiB, more than 200.0 KiB", 0),
      0u)
      << err_.str();
  EXPECT_NE(err_.str().find("Largest entries: data/ (300.0 KiB), model.bin (100.0 KiB), "),
            std::string::npos)
      << err_.str();
  EXPECT_NE(err_.str().find((dir_ / "ctx" / ".dockerignore").string()), std::string::npos);
  EXPECT_EQ(coordinator.uploads(), 1);
  // The size is shown before the upload.
  EXPECT_TRUE(Lines(out_.str())[0].starts_with("context: ")) << out_.str();

  // Above the limit nothing is sent; what .dockerignore leaves out does not count.
  options.context_limit_bytes = 350 * 1024;
  EXPECT_EQ(Run(options), 1);
  EXPECT_EQ(err_.str().rfind("manifold: the build context " + (dir_ / "ctx").string() +
                                 " packs to 405.0 KiB, above the limit of 350.0 KiB",
                             0),
            0u)
      << err_.str();
  EXPECT_NE(err_.str().find("its largest entries are data/ (300.0 KiB)"), std::string::npos)
      << err_.str();
  EXPECT_NE(err_.str().find(": add what the build does not need to " +
                            (dir_ / "ctx" / ".dockerignore").string()),
            std::string::npos)
      << err_.str();
  std::string refusal = err_.str();
  EXPECT_EQ(std::count(refusal.begin(), refusal.end(), '\n'), 1) << refusal;
  EXPECT_EQ(coordinator.uploads(), 1);
  std::ofstream(dir_ / "ctx" / ".dockerignore") << "data\n";
  ASSERT_EQ(Run(options), 0) << err_.str();
  EXPECT_EQ(err_.str(), "");
}

TEST_F(BuildCommandTest, SendsTheGitOriginAndCommitAsSourceAndRevision) {
  ScriptedCoordinator coordinator(SucceedingScript());
  std::string ctx = (dir_ / "ctx").string();
  auto git = [&](const std::string& args) {
    std::string command = "git -C '" + ctx + "' " + args + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  };
  git("init -q");
  git("-c user.name=t -c user.email=t@example.com add -A");
  git("-c user.name=t -c user.email=t@example.com commit -q -m initial");
  git("remote add origin https://ci:s3cret@git.example.com/team/app.git");
  FILE* head = popen(("git -C '" + ctx + "' rev-parse HEAD").c_str(), "r");
  ASSERT_NE(head, nullptr);
  char commit[64] = {};
  ASSERT_NE(fgets(commit, sizeof commit, head), nullptr);
  pclose(head);
  std::string revision(commit, 40);

  BuildOptions options = Options(coordinator.url());
  ASSERT_EQ(Run(options), 0) << err_.str();
  EXPECT_EQ(coordinator.submitted()["source"], "https://git.example.com/team/app.git");
  EXPECT_EQ(coordinator.submitted()["revision"], revision);

  // A changed work tree is not that commit; a subdirectory of the tree is in it too.
  std::ofstream(dir_ / "ctx" / "src" / "main.c") << "int main() { return 1; }\n";
  options.context_dir = (dir_ / "ctx" / "src").string();
  options.dockerfile = (dir_ / "ctx" / "Dockerfile").string();
  ASSERT_EQ(Run(options), 0) << err_.str();
  EXPECT_EQ(coordinator.submitted()["revision"], revision + "-dirty");
}

TEST(LogsCommand, FollowPrintsEveryLineOnceThenStops) {
  ScriptedCoordinator coordinator(SucceedingScript());
  std::ostringstream out;
  std::ostringstream err;
  ASSERT_EQ(
      RunLogs(coordinator.url(), 7, /*follow=*/true, std::chrono::milliseconds(1), &out, &err), 0)
      << err.str();
  EXPECT_EQ(out.str(),
            "[linux/amd64] STEP 1/2: FROM busybox\n"
            "[linux/arm64] STEP 1/2: FROM busybox\n"
            "[linux/arm64] STEP 2/2: RUN uname -m\n"
            "[linux/amd64] STEP 2/2: RUN uname -m\n"
            "[linux/amd64] x86_64\n"
            "[linux/arm64] aarch64\n");

  // The build is over now: without --follow the same lines come back at once.
  std::ostringstream again;
  ASSERT_EQ(
      RunLogs(coordinator.url(), 7, /*follow=*/false, std::chrono::milliseconds(1), &again, &err),
      0);
  EXPECT_EQ(again.str(), out.str());
}

TEST(LogsCommand, UnknownBuild) {
  ScriptedCoordinator coordinator(SucceedingScript());
  std::ostringstream out;
  std::ostringstream err;
  EXPECT_EQ(RunStatus(coordinator.url(), 8, &out, &err), 1);
  EXPECT_EQ(err.str(), "manifold: no build 8 on the coordinator at " + coordinator.url() +
                           " (list builds with `manifold ls`)\n");
}

JobInfo TestJob(int64_t id, std::string platform, std::string state, std::string agent) {
  JobInfo job;
  job.id = id;
  job.platform = std::move(platform);
  job.state = std::move(state);
  job.attempt = 1;
  job.agent = std::move(agent);
  return job;
}

TEST(JobChanges, ReportsOnlyWhatChanged) {
  BuildInfo before;
  before.state = "running";
  before.jobs = {TestJob(1, "linux/amd64", "building", "host-a"),
                 TestJob(2, "linux/arm64", "building", "b")};
  BuildInfo after = before;
  after.jobs[1].state = "pending";
  after.jobs[1].attempt = 2;
  after.jobs[1].agent = "";
  after.jobs[1].error = "agent b lost";
  std::vector<ProgressEvent> events = JobChanges(&before, after);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].platform, "linux/arm64");
  EXPECT_EQ(events[0].text, "job requeued for attempt 2 after: agent b lost");
  EXPECT_FALSE(events[0].final);

  before = after;
  after.jobs[1].state = "assigned";
  after.jobs[1].agent = "c";
  after.jobs[1].emulated = true;
  events = JobChanges(&before, after);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].text, "job assigned to agent c (emulated) (attempt 2)");
  EXPECT_TRUE(JobChanges(&after, after).empty());
  EXPECT_EQ(JobChanges(nullptr, after).size(), 2u);
}

// A waiting job's placement is why it waits: printed when it appears and when it changes.
TEST(JobChanges, SaysOnceWhyAJobWaitsAndAgainWhenThatChanges) {
  BuildInfo before;
  before.state = "queued";
  before.jobs = {TestJob(1, "linux/arm/v7", "pending", "")};
  before.jobs[0].attempt = 0;
  std::vector<ProgressEvent> events = JobChanges(nullptr, before);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].text, "waiting for an agent");

  BuildInfo after = before;
  const std::string why =
      "no connected agent serves linux/arm/v7 (agents serve linux/amd64); the job fails if "
      "none connects within 900 s (--queue-timeout)";
  after.jobs[0].placement = why;
  events = JobChanges(&before, after);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].text, "waiting for an agent: " + why);
  EXPECT_TRUE(JobChanges(&after, after).empty());

  // An agent for it connected, but its slots are busy.
  before = after;
  after.jobs[0].placement = "";
  events = JobChanges(&before, after);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].text, "waiting for an agent");

  // Requeued after an attempt, with nowhere to go.
  before = after;
  after.jobs[0].attempt = 2;
  after.jobs[0].error = "agent b lost";
  after.jobs[0].placement = why;
  events = JobChanges(&before, after);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].text, "job requeued for attempt 2 after: agent b lost; waiting: " + why);
}

}  // namespace
}  // namespace manifold
