// FollowBuild against a coordinator that goes away for a while, or for good, and what it
// prints about a job that failed.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cli/follow.h"

namespace manifold {
namespace {

// Answers GET /v1/builds/7 with `running` once, then 503 for `outage` answers, then
// `succeeded`; the logs endpoint always has nothing more.
class FlakyCoordinator {
 public:
  explicit FlakyCoordinator(int outage) : outage_(outage) {
    server_.Get("/v1/builds/7", [this](const httplib::Request&, httplib::Response& res) {
      int call = calls_++;
      if (call == 0) {
        res.set_content(R"({"id": 7, "state": "running"})", "application/json");
      } else if (call <= outage_) {
        res.status = 503;
        res.set_content(R"({"error": "database unavailable"})", "application/json");
      } else {
        res.set_content(R"({"id": 7, "state": "succeeded", "index_digest": "sha256:i"})",
                        "application/json");
      }
    });
    server_.Get("/v1/builds/7/logs", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"chunks": [], "next": 0, "done": false})", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FlakyCoordinator() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int outage_;
  std::atomic<int> calls_{0};
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

FollowOptions FastOptions() {
  FollowOptions options;
  options.interval = std::chrono::milliseconds(1);
  options.unavailable_grace = std::chrono::milliseconds(2000);
  return options;
}

TEST(FollowBuild, RidesOutABriefOutage) {
  FlakyCoordinator coordinator(/*outage=*/3);
  std::ostringstream out;
  std::ostringstream err;
  LogPrinter printer(&out);
  Result<BuildInfo> build =
      FollowBuild(ApiClient(coordinator.url()), 7, FastOptions(), &printer, &err);
  ASSERT_TRUE(build.ok()) << build.status().message();
  EXPECT_EQ(build->state, "succeeded");
  EXPECT_EQ(err.str(),
            "manifold: database unavailable (retrying for up to 2 s)\n"
            "manifold: the coordinator answers again\n");
}

TEST(FollowBuild, GivesUpAfterTheGracePeriod) {
  FlakyCoordinator coordinator(/*outage=*/1000000);
  std::ostringstream out;
  std::ostringstream err;
  LogPrinter printer(&out);
  FollowOptions options = FastOptions();
  options.unavailable_grace = std::chrono::milliseconds(50);
  Result<BuildInfo> build = FollowBuild(ApiClient(coordinator.url()), 7, options, &printer, &err);
  ASSERT_FALSE(build.ok());
  EXPECT_EQ(build.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(build.status().message(), "database unavailable");
}

TEST(FollowBuild, UnknownBuildIsNotRetried) {
  FlakyCoordinator coordinator(0);
  std::ostringstream out;
  std::ostringstream err;
  Result<BuildInfo> build =
      FollowBuild(ApiClient(coordinator.url()), 8, FastOptions(), nullptr, &err);
  ASSERT_FALSE(build.ok());
  EXPECT_EQ(build.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(err.str(), "");
}

// A failed build whose amd64 job logged its error and whose arm64 job did not (a log cut
// short by the log limits, say): the error is printed once for the first, in full for both.
TEST(FollowBuild, AJobsErrorIsNotRepeatedAfterTheAgentLoggedIt) {
  const std::string error = "this agent cannot verify the TLS certificate";
  httplib::Server server;
  server.Get("/v1/builds/9", [&](const httplib::Request&, httplib::Response& res) {
    nlohmann::json job = {
        {"platform", "linux/amd64"}, {"state", "failed"}, {"attempt", 1}, {"error", error}};
    nlohmann::json other = job;
    other["id"] = 2;
    other["platform"] = "linux/arm64";
    job["id"] = 1;
    res.set_content(nlohmann::json{{"id", 9},
                                   {"state", "failed"},
                                   {"error", "linux/amd64 failed: " + error},
                                   {"jobs", {job, other}}}
                        .dump(),
                    "application/json");
  });
  server.Get("/v1/builds/9/logs", [&](const httplib::Request&, httplib::Response& res) {
    nlohmann::json chunk = {{"seq", 1},
                            {"platform", "linux/amd64"},
                            {"attempt", 1},
                            {"data", "manifold: failed: " + error + "\n"}};
    res.set_content(nlohmann::json{{"chunks", {chunk}}, {"next", 1}, {"done", true}}.dump(),
                    "application/json");
  });
  int port = server.bind_to_any_port("127.0.0.1");
  std::thread thread([&] { server.listen_after_bind(); });
  while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::ostringstream out;
  std::ostringstream err;
  LogPrinter printer(&out);
  Result<BuildInfo> build = FollowBuild(ApiClient("http://127.0.0.1:" + std::to_string(port)), 9,
                                        FastOptions(), &printer, &err);
  printer.Flush();
  server.stop();
  thread.join();
  ASSERT_TRUE(build.ok()) << build.status().message();
  EXPECT_EQ(out.str(), "[linux/amd64] manifold: failed: " + error +
                           "\n"
                           "[linux/amd64] failed (the agent's error is above)\n"
                           "[linux/arm64] failed: " +
                           error + "\n");
}

}  // namespace
}  // namespace manifold
