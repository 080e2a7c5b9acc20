// Agent results that must reach the coordinator however the agent's exit falls: a job
// that ends while a draining agent sends its last output, and jobs the agent cancels as
// it exits. A real Agent talks ZeroMQ over 127.0.0.1 to the test, which plays the
// coordinator on a ROUTER socket and serves the build context over HTTP; the Builder
// ends its build when the test says.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <zmq.hpp>

#include "agent/agent.h"
#include "agent/metrics.h"
#include "common/digest.h"
#include "common/tar.h"
#include "common/wire.h"
#include "tests/support/temp_dir.h"

namespace manifold {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A build that waits for the test's word (or a cancel) and then fails; on `Flood` it first
// writes `bytes` of output at once, as a chatty build step does.
class GatedBuilder : public Builder {
 public:
  std::string Name() const override { return "gated"; }
  Status Build(const BuildRequest&, const std::function<void(std::string_view)>& on_output,
               const std::atomic<bool>* cancel) override {
    std::unique_lock lock(mutex_);
    started_ = true;
    changed_.notify_all();
    Await(lock, [&] { return flood_bytes_ > 0 || finish_ || *cancel; });
    if (*cancel) return Status::Canceled("gated build canceled");
    if (flood_bytes_ > 0) on_output("FLOOD" + std::string(flood_bytes_, 'x') + "\n");
    Await(lock, [&] { return finish_ || *cancel; });
    if (*cancel) return Status::Canceled("gated build canceled");
    return Status::Internal("the gated build failed");
  }
  bool WaitStarted() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, seconds(30), [&] { return started_; });
  }
  void Flood(size_t bytes) {
    Set([&] { flood_bytes_ = bytes; });
  }
  void Finish() {
    Set([&] { finish_ = true; });
  }

 private:
  // Up to 30 s; looks at the cancel flag every few milliseconds, as the agent sets it
  // without a word.
  void Await(std::unique_lock<std::mutex>& lock, const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + seconds(30);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      changed_.wait_for(lock, milliseconds(5));
    }
  }
  void Set(const std::function<void()>& change) {
    std::lock_guard lock(mutex_);
    change();
    changed_.notify_all();
  }
  std::mutex mutex_;
  std::condition_variable changed_;
  bool started_ = false;
  size_t flood_bytes_ = 0;
  bool finish_ = false;
};

class AgentResultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.set(zmq::sockopt::linger, 0);
    router_.bind("tcp://127.0.0.1:0");
    std::string context_dir = dir_.path() + "/context";
    std::filesystem::create_directories(context_dir);
    std::ofstream(context_dir + "/Dockerfile") << "FROM scratch\n";
    ASSERT_TRUE(WriteTarFromDirectory(context_dir, nullptr, &context_).ok());
    http_.Get("/context", [this](const httplib::Request&, httplib::Response& response) {
      response.set_content(context_, "application/x-tar");
    });
    int port = http_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port, 0);
    http_thread_ = std::thread([this] { http_.listen_after_bind(); });
    context_url_ = "http://127.0.0.1:" + std::to_string(port) + "/context";
  }

  void TearDown() override {
    // After a failure the agent may still run: let it finish and leave.
    stop_ = true;
    builder_.Finish();
    if (agent_thread_.joinable()) {
      ReceiveUntil<GoodbyeMsg>(seconds(10));
      agent_thread_.join();
    }
    http_.stop();
    if (http_thread_.joinable()) http_thread_.join();
  }

  void StartAgent(milliseconds drain_grace) {
    AgentOptions options;
    options.coordinator = router_.get(zmq::sockopt::last_endpoint);
    options.agent_id = "a1";
    options.platforms = {{Platform{"linux", "amd64", ""}, false}};
    options.work_dir = dir_.path() + "/work";
    options.drain_grace = drain_grace;
    options.result_resend = milliseconds(200);
    options.metrics = &metrics_;
    agent_ = std::make_unique<Agent>(options, builder_);
    agent_thread_ = std::thread([this] { run_status_ = agent_->Run(stop_); });
  }

  // The next message from the agent, nullopt after `timeout`; remembers its routing id.
  std::optional<AgentMessage> Receive(milliseconds timeout = milliseconds(20000)) {
    zmq::pollitem_t items[] = {{router_.handle(), 0, ZMQ_POLLIN, 0}};
    if (zmq::poll(items, 1, timeout) <= 0) return std::nullopt;
    zmq::message_t route, frame;
    if (!router_.recv(route) || !route.more() || !router_.recv(frame)) return std::nullopt;
    route_ = route.to_string();
    Result<AgentMessage> message = DecodeAgentMessage(frame.to_string_view());
    EXPECT_TRUE(message.ok()) << message.status().message();
    return message.ok() ? std::optional<AgentMessage>(*message) : std::nullopt;
  }

  void Send(const CoordinatorMessage& message) {
    std::string frame = EncodeCoordinatorMessage(message);
    router_.send(zmq::buffer(route_), zmq::send_flags::sndmore);
    router_.send(zmq::buffer(frame));
  }

  // Receives until a message of type T, playing the coordinator's part for the others
  // (hello: welcome; result: acknowledge, and remember it); nullopt on timeout.
  template <typename T>
  std::optional<T> ReceiveUntil(milliseconds timeout = milliseconds(20000)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      std::optional<AgentMessage> message = Receive(std::chrono::duration_cast<milliseconds>(
          deadline - std::chrono::steady_clock::now() + milliseconds(1)));
      if (!message) return std::nullopt;
      if (std::holds_alternative<HelloMsg>(*message)) Send(WelcomeMsg{"s1", 200, {}, 0});
      if (auto* result = std::get_if<JobResultMsg>(&*message)) {
        results_.push_back(*result);
        Send(AckMsg{result->job});
      }
      if (auto* wanted = std::get_if<T>(&*message)) return *wanted;
    }
    return std::nullopt;
  }

  // Welcomes the agent and gives it job 7 attempt 1; true once its build runs.
  bool AssignAJob() {
    if (!ReceiveUntil<HelloMsg>()) return false;
    AssignMsg assign;
    assign.job = {7, 1};
    assign.build_id = 3;
    assign.platform = Platform{"linux", "amd64", ""};
    assign.context_url = context_url_;
    assign.context_digest = Sha256Digest(context_);
    assign.dockerfile = "FROM scratch\n";
    assign.repositories = {"127.0.0.1:1/never-pushed"};
    Send(assign);
    return builder_.WaitStarted();
  }

  test::TempDir dir_{"agent-results"};
  zmq::context_t context_zmq_{1};
  zmq::socket_t router_{context_zmq_, zmq::socket_type::router};
  std::string route_;
  httplib::Server http_;
  std::thread http_thread_;
  std::string context_;
  std::string context_url_;
  GatedBuilder builder_;
  AgentMetrics metrics_{{{Platform{"linux", "amd64", ""}, false}}, 1, "test"};
  std::atomic<bool> stop_{false};
  std::unique_ptr<Agent> agent_;
  std::thread agent_thread_;
  Status run_status_;
  std::vector<JobResultMsg> results_;
};

// The build ends while the draining agent sends a large batch of its output (the moment
// between taking the finished results and reaping the finished jobs): its result still
// goes out, before the goodbye.
TEST_F(AgentResultsTest, AJobEndingWhileTheDrainingAgentSendsItsOutputIsReportedBeforeGoodbye) {
  StartAgent(seconds(60));
  ASSERT_TRUE(AssignAJob());
  stop_ = true;
  ASSERT_TRUE(ReceiveUntil<DrainingMsg>());
  builder_.Flood(64 << 20);
  // The flood's first chunk is here while the agent still sends the rest: the build ends now.
  std::optional<LogChunkMsg> chunk;
  do {
    chunk = ReceiveUntil<LogChunkMsg>();
  } while (chunk && !chunk->data.starts_with("FLOOD"));
  ASSERT_TRUE(chunk);
  builder_.Finish();

  ASSERT_TRUE(ReceiveUntil<GoodbyeMsg>(milliseconds(30000)));
  ASSERT_EQ(results_.size(), 1u) << "the job's result was lost";
  EXPECT_EQ(results_[0].job, (JobRef{7, 1}));
  EXPECT_EQ(results_[0].error, "the gated build failed");
  agent_thread_.join();
  EXPECT_TRUE(run_status_.ok()) << run_status_.message();
}

// A job running when the agent has to exit (here the coordinator refuses it for good) is
// canceled, and its result says why and is retryable, so that another agent runs it.
TEST_F(AgentResultsTest, AJobCanceledAsTheAgentExitsIsReportedRetryable) {
  StartAgent(seconds(60));
  ASSERT_TRUE(AssignAJob());
  Send(RejectMsg{"this agent's key was removed", true});
  agent_thread_.join();
  EXPECT_EQ(run_status_.code(), Status::Code::kFailedPrecondition);

  ASSERT_TRUE(ReceiveUntil<JobResultMsg>(milliseconds(5000))) << "the job's result was not sent";
  ASSERT_EQ(results_.size(), 1u);
  EXPECT_EQ(results_[0].job, (JobRef{7, 1}));
  EXPECT_TRUE(results_[0].retryable);
  EXPECT_EQ(results_[0].error,
            "agent a1 canceled the job as it exits: the coordinator refused this agent: this "
            "agent's key was removed; the job is retried on another agent");
}

// The drain grace runs out before the build ends: the agent cancels it and reports a
// retryable failure that says why, then says goodbye.
TEST_F(AgentResultsTest, AJobOutlastingTheDrainGraceIsReportedRetryableBeforeGoodbye) {
  StartAgent(milliseconds(300));
  ASSERT_TRUE(AssignAJob());
  stop_ = true;
  std::optional<JobResultMsg> result = ReceiveUntil<JobResultMsg>();
  ASSERT_TRUE(result) << "no result before the timeout";
  EXPECT_TRUE(result->retryable);
  EXPECT_EQ(result->error,
            "agent a1 drained (SIGTERM or SIGINT) and its grace of 300 ms ran out before the job "
            "finished; the job is retried on another agent");
  EXPECT_TRUE(ReceiveUntil<GoodbyeMsg>());
  agent_thread_.join();
}

// Output the coordinator asks the agent to hold (its database is behind) stays on the
// agent, bounded to the job's head and tail, while the job's result still goes out; once
// told to resume, the agent sends what it kept, with a line where it cut.
TEST_F(AgentResultsTest, HeldOutputKeepsItsHeadAndTailWhileTheResultGoesOut) {
  StartAgent(seconds(60));
  ASSERT_TRUE(AssignAJob());
  Send(LogFlowMsg{true});
  auto held = [&] {
    return metrics_.Text().find("manifold_agent_logs_held 1") != std::string::npos;
  };
  for (auto deadline = std::chrono::steady_clock::now() + seconds(10);
       !held() && std::chrono::steady_clock::now() < deadline;) {
    Receive(milliseconds(50));
  }
  ASSERT_TRUE(held());
  builder_.Flood(8 << 20);
  builder_.Finish();
  std::string sent_while_held;
  std::optional<AgentMessage> message;
  while ((message = Receive()) && !std::holds_alternative<JobResultMsg>(*message)) {
    if (auto* chunk = std::get_if<LogChunkMsg>(&*message)) sent_while_held += chunk->data;
  }
  ASSERT_TRUE(message) << "the result was held back with the output";
  Send(AckMsg{std::get<JobResultMsg>(*message).job});
  EXPECT_EQ(sent_while_held.find("FLOOD"), std::string::npos);

  Send(LogFlowMsg{false});
  std::string sent;
  while (sent.find("manifold: failed") == std::string::npos) {
    std::optional<LogChunkMsg> chunk = ReceiveUntil<LogChunkMsg>(milliseconds(10000));
    ASSERT_TRUE(chunk) << "the held output was not sent after the resume";
    sent += chunk->data;
  }
  // The job's first lines (the runner's), then the flood's head, the cut, its tail.
  size_t flood = sent.find("FLOOD");
  size_t cut = sent.find("bytes cut here while the agent held its output");
  ASSERT_NE(flood, std::string::npos);
  ASSERT_NE(cut, std::string::npos);
  EXPECT_LT(flood, cut);
  EXPECT_LT(sent.size(), size_t{3} << 20);
  EXPECT_EQ(metrics_.Text().find("manifold_agent_log_bytes_cut_total 0"), std::string::npos);
}
}  // namespace
}  // namespace manifold
