// Hostile input against a real local farm (ops/farm.sh: PostgreSQL, registry, coordinator
// and a real linux/amd64 agent building with buildah): a rogue DEALER socket on loopback
// (plaintext) that sends garbage, truncated frames and messages about jobs that are not
// its own, an agent flooding build output, hostile build contexts, and oversize or invalid
// API requests. After each, the coordinator is still up and the real agent still builds.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <zmq.hpp>

#include "common/digest.h"
#include "common/http_client.h"
#include "common/oci.h"
#include "common/tar.h"
#include "common/wire.h"
#include "tests/support/farm.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace manifold::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

// A peer on the agent socket that the coordinator has no reason to trust: it sends raw
// bytes or protocol messages and can wait for what the coordinator answers.
class RogueDealer {
 public:
  RogueDealer(zmq::context_t& context, const std::string& endpoint)
      : socket_(context, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    // A DEALER with no live connection blocks on send; bounded, a refused rogue fails the
    // test instead of hanging it.
    socket_.set(zmq::sockopt::sndtimeo, 5000);
    socket_.connect(endpoint);
  }

  void Raw(const std::string& frame, bool more = false) {
    socket_.send(zmq::buffer(frame), more ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
  void Message(const AgentMessage& message) { Raw(EncodeAgentMessage(message)); }

  // Waits for a coordinator message of type T, heartbeating meanwhile so that a session
  // it opened with hello stays alive.
  template <typename T>
  std::optional<T> Await(milliseconds timeout = milliseconds(20000)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      Message(HeartbeatMsg{held_});
      zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 1, milliseconds(200));
      zmq::message_t frame;
      while ((items[0].revents & ZMQ_POLLIN) && socket_.recv(frame, zmq::recv_flags::dontwait)) {
        Result<CoordinatorMessage> message = DecodeCoordinatorMessage(frame.to_string_view());
        if (!message.ok()) continue;
        if (auto* wanted = std::get_if<T>(&*message)) return *wanted;
      }
    }
    return std::nullopt;
  }

  void Holding(std::vector<JobRef> jobs) { held_ = std::move(jobs); }

 private:
  zmq::socket_t socket_;
  std::vector<JobRef> held_;
};

std::string Frame(std::mt19937& rng, size_t max_size) {
  std::string frame(std::uniform_int_distribution<size_t>(0, max_size)(rng), '\0');
  for (char& c : frame) c = static_cast<char>(rng());
  return frame;
}

// Hand-made tar entries, independent of the writer under test.
std::string TarEntry(const std::string& name, char type, const std::string& data = "",
                     const std::string& linkname = "") {
  char h[512] = {};
  std::memcpy(h, name.data(), std::min<size_t>(name.size(), 100));
  std::snprintf(h + 100, 8, "%07o", 0644);
  std::snprintf(h + 108, 8, "%07o", 0);
  std::snprintf(h + 116, 8, "%07o", 0);
  std::snprintf(h + 124, 12, "%011zo", data.size());
  std::snprintf(h + 136, 12, "%011o", 1'500'000'000);
  h[156] = type;
  std::memcpy(h + 157, linkname.data(), std::min<size_t>(linkname.size(), 100));
  std::memcpy(h + 257, "ustar", 5);
  std::memcpy(h + 263, "00", 2);
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(h + 148, 8, "%06o", sum);
  return std::string(h, 512) + data + std::string((512 - data.size() % 512) % 512, '\0');
}

class HostileInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    FarmOptions options;
    options.agents = {"amd64-1:linux/amd64"};
    // The rogue DEALER sockets here speak plaintext, which the coordinator takes only on
    // loopback; the CURVE link itself is tested in security_test.
    options.env = {{"MANIFOLD_FARM_PLAINTEXT", "1"},
                   {"MANIFOLD_MAX_FRAME_BYTES", std::to_string(4 << 20)},
                   {"MANIFOLD_LOG_BYTES_PER_SECOND", "4096"},
                   {"MANIFOLD_LOG_BURST_BYTES", "65536"},
                   {"MANIFOLD_MAX_REQUEST_BYTES", "65536"},
                   {"MANIFOLD_MAX_CONTEXT_BYTES", std::to_string(4 << 20)}};
    farm_ = StartSuiteFarm(options);
  }
  static void TearDownTestSuite() { farm_.reset(); }

  void SetUp() override { ASSERT_NE(farm_, nullptr) << "the farm did not come up"; }
  void TearDown() override {
    if (HasFailure() && farm_ != nullptr) {
      for (const char* name : {"coordinator", "amd64-1"}) {
        std::cerr << "---- " << name << " log ----\n" << farm_->LogTail(name) << "\n";
      }
    }
  }

  // A value from the farm's saved configuration (ops/farm.sh writes farm.conf).
  static std::string FarmConf(const std::string& key) {
    std::ifstream in(farm_->dir() + "/farm/farm.conf");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(key + "=", 0) == 0) return line.substr(key.size() + 1);
    }
    return "";
  }
  std::string AgentEndpoint() { return "tcp://127.0.0.1:" + FarmConf("agent_port"); }

  HttpResponse Request(const std::string& method, const std::string& path, const std::string& body,
                       const std::string& content_type) {
    HttpRequest request;
    request.method = method;
    request.url = farm_->server_url() + path;
    request.body = body;
    request.headers = {{"Content-Type", content_type}};
    request.timeout_ms = 30000;
    Result<HttpResponse> response = HttpClient().Send(request);
    EXPECT_TRUE(response.ok()) << method << " " << path << ": " << response.status().message();
    return response.ok() ? *response : HttpResponse{};
  }

  // Uploads `context` and submits a build of it for `platform`; returns the build id.
  uint64_t Submit(const std::string& context, const std::string& platform,
                  const std::string& dockerfile, const std::string& tag) {
    std::string digest = Sha256Digest(context);
    HttpResponse put = Request("PUT", "/v1/contexts/" + digest, context, "application/x-tar");
    EXPECT_EQ(put.status, 201) << put.body;
    json request = {{"platforms", {platform}},
                    {"tags", {farm_->registry() + "/" + tag}},
                    {"context", digest},
                    {"dockerfile", dockerfile}};
    HttpResponse post = Request("POST", "/v1/builds", request.dump(), "application/json");
    EXPECT_EQ(post.status, 201) << post.body;
    return json::parse(post.body, nullptr, false).value("id", uint64_t{0});
  }

  // The build once it reached a final state (null JSON if it did not in time).
  json Finished(uint64_t id, seconds timeout = seconds(180)) {
    return farm_->FinishedBuild(id, timeout);
  }

  // A build of examples/hello on the real agent; returns its final state.
  std::string RealBuild(const std::string& tag) {
    std::string context;
    EXPECT_TRUE(WriteTarFromDirectory(SourceDir() + "/examples/hello", {}, &context).ok());
    std::ifstream in(SourceDir() + "/examples/hello/Dockerfile");
    std::string dockerfile((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    json build = Finished(Submit(context, "linux/amd64", dockerfile, tag));
    EXPECT_EQ(build.value("state", ""), "succeeded") << build.dump();
    return build.value("state", "");
  }

  // One series of the coordinator's /metrics, 0 if absent.
  double Metric(const std::string& series) {
    HttpRequest request;
    request.url = "http://127.0.0.1:" + FarmConf("metrics_port") + "/metrics";
    request.timeout_ms = 10000;
    Result<HttpResponse> response = HttpClient().Send(request);
    if (!response.ok()) return 0;
    std::istringstream lines(response->body);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
    }
    return 0;
  }

  static std::unique_ptr<Farm> farm_;
  zmq::context_t zmq_{1};
};

std::unique_ptr<Farm> HostileInputTest::farm_;

const char kMalformed[] = "manifold_agent_frames_malformed_total";
const char kNotAssigned[] = "manifold_agent_messages_dropped_total{reason=\"not_assigned\"}";
const char kLogLimit[] = "manifold_agent_messages_dropped_total{reason=\"log_limit\"}";

TEST_F(HostileInputTest, RogueFramesAreDroppedAndCountedAndTheRealAgentStillBuilds) {
  double malformed_before = Metric(kMalformed);
  RogueDealer rogue(zmq_, AgentEndpoint());
  std::mt19937 rng(7);  // fixed seed: the same burst every run
  constexpr int kRandom = 300;
  for (int i = 0; i < kRandom; ++i) rogue.Raw(Frame(rng, 2048));
  HelloMsg hello;
  hello.agent_id = "rogue-1";
  hello.platforms = {{*ParsePlatform("linux/s390x"), false}};
  std::vector<std::string> valid = {EncodeAgentMessage(hello),
                                    EncodeAgentMessage(HeartbeatMsg{{{1, 1}}}),
                                    EncodeAgentMessage(LogChunkMsg{{1, 1}, 1, "x"})};
  int truncated = 0;
  for (const std::string& frame : valid) {
    for (size_t cut = 0; cut < frame.size(); cut += 8, ++truncated) rogue.Raw(frame.substr(0, cut));
  }
  rogue.Raw("part one", true);  // a multi-part message is not a protocol message
  rogue.Raw("part two");
  // A frame over ZMQ_MAXMSGSIZE makes libzmq drop the connection; the DEALER reconnects.
  rogue.Raw(std::string(5 << 20, 'x'));
  ASSERT_TRUE(WaitFor([&] { return Metric(kMalformed) - malformed_before >= kRandom; },
                      milliseconds(20000)))
      << "malformed frames counted: " << Metric(kMalformed) - malformed_before;
  EXPECT_GT(truncated, 20);

  Result<HttpResponse> agents = farm_->Api("GET", "/v1/agents");
  ASSERT_TRUE(agents.ok()) << agents.status().message();
  json list = json::parse(agents->body, nullptr, false)["agents"];
  ASSERT_EQ(list.size(), 1u) << agents->body;  // rogue-1's hello only ever arrived cut short
  EXPECT_EQ(list[0]["id"], "amd64-1");
  EXPECT_EQ(RealBuild("after-burst:1"), "succeeded");
}

TEST_F(HostileInputTest, AnAgentCannotActOnAJobNotAssignedToIt) {
  double dropped_before = Metric(kNotAssigned);
  // A build slow enough for the rogue to interfere while the real agent runs it.
  std::string context = TarEntry("f", '0', "x") + std::string(1024, '\0');
  uint64_t build_id =
      Submit(context, "linux/amd64", "FROM busybox\nRUN sleep 4\nCOPY f /f\n", "fenced:1");
  JobRef job;
  ASSERT_TRUE(WaitFor(
      [&] {
        Result<json> build = farm_->GetBuild(build_id);
        if (!build.ok() || (*build)["jobs"].empty()) return false;
        const json& j = (*build)["jobs"][0];
        job = {j.value("id", uint64_t{0}), j.value("attempt", 0u)};
        return j.value("agent", "") == "amd64-1";
      },
      milliseconds(60000)));

  RogueDealer rogue(zmq_, AgentEndpoint());
  HelloMsg hello;
  hello.agent_id = "rogue-2";
  hello.platforms = {{*ParsePlatform("linux/amd64"), false}};
  hello.slots = 1;
  rogue.Message(hello);
  ASSERT_TRUE(rogue.Await<WelcomeMsg>().has_value());
  // Claims about the real agent's job: right id and attempt but wrong agent, then the
  // right id with attempts that are not current.
  const std::string fake_digest = Sha256Digest("not what the agent built");
  for (JobRef claimed : {job, JobRef{job.job_id, job.attempt + 1}, JobRef{job.job_id, 0}}) {
    rogue.Message(JobUpdateMsg{claimed, JobPhase::kPushing});
    rogue.Message(LogChunkMsg{claimed, 900 + claimed.attempt, "rogue output\n"});
    rogue.Message(
        JobResultMsg{claimed, true, {std::string(kOciManifest), fake_digest, 1}, "", false});
  }
  ASSERT_TRUE(
      WaitFor([&] { return Metric(kNotAssigned) - dropped_before >= 9; }, milliseconds(20000)))
      << "dropped as not assigned: " << Metric(kNotAssigned) - dropped_before;

  json build = Finished(build_id);
  ASSERT_EQ(build.value("state", ""), "succeeded") << build.dump();
  EXPECT_EQ(build["jobs"][0]["agent"], "amd64-1");
  EXPECT_EQ(build["jobs"][0]["attempt"], job.attempt);
  EXPECT_NE(build["jobs"][0]["manifest_digest"], fake_digest);
  Result<HttpResponse> logs = farm_->Api("GET", "/v1/builds/" + std::to_string(build_id) + "/logs");
  ASSERT_TRUE(logs.ok());
  EXPECT_EQ(logs->body.find("rogue output"), std::string::npos) << logs->body;
}

TEST_F(HostileInputTest, LogFloodIsDroppedCountedAndNotedInTheJobLog) {
  double dropped_before = Metric(kLogLimit);
  RogueDealer flooder(zmq_, AgentEndpoint());
  HelloMsg hello;
  hello.agent_id = "flooder-1";
  hello.platforms = {{*ParsePlatform("linux/s390x"), false}};  // the only s390x agent
  flooder.Message(hello);
  ASSERT_TRUE(flooder.Await<WelcomeMsg>().has_value());
  uint64_t build_id = Submit(TarEntry("f", '0', "x") + std::string(1024, '\0'), "linux/s390x",
                             "FROM busybox\n", "flood:1");
  std::optional<AssignMsg> assign = flooder.Await<AssignMsg>();
  ASSERT_TRUE(assign.has_value());
  flooder.Holding({assign->job});
  // 64 chunks of 4 KiB at once: the 64 KiB burst takes 16, the rest is over the limit.
  // One chunk is larger than the 1 MiB chunk limit whatever the budget.
  for (uint64_t seq = 1; seq <= 64; ++seq) {
    flooder.Message(LogChunkMsg{assign->job, seq, std::string(4096, 'a') + "\n"});
  }
  flooder.Message(LogChunkMsg{assign->job, 65, std::string((1 << 20) + 1, 'b')});
  flooder.Message(JobResultMsg{assign->job, false, {}, "flooded", false});
  ASSERT_TRUE(flooder.Await<AckMsg>().has_value());

  EXPECT_GE(Metric(kLogLimit) - dropped_before, 40);
  json build = Finished(build_id, seconds(30));
  EXPECT_EQ(build.value("state", ""), "failed") << build.dump();
  Result<HttpResponse> logs = farm_->Api("GET", "/v1/builds/" + std::to_string(build_id) + "/logs");
  ASSERT_TRUE(logs.ok());
  json chunks = json::parse(logs->body)["chunks"];
  size_t kept_bytes = 0;
  bool noted = false;
  for (const json& chunk : chunks) {
    std::string data = chunk.value("data", "");
    kept_bytes += data.size();
    noted = noted || data.find("build output dropped here") != std::string::npos;
  }
  EXPECT_TRUE(noted) << logs->body.substr(0, 2000);
  EXPECT_LE(kept_bytes, (64u << 10) + 8 * 4097 + 1024) << "more output kept than the limits allow";
  EXPECT_TRUE(farm_->Pid("coordinator") != 0);
}

TEST_F(HostileInputTest, HostileContextsAreRefusedByTheAgentWithNothingWrittenOutside) {
  const std::string marker = "manifold-escape-" + std::to_string(getpid());
  const std::string absolute = "/tmp/" + marker + "-absolute";
  const std::string ok = TarEntry("ok.txt", '0', "fine");
  const std::string end(1024, '\0');
  struct Case {
    const char* what;
    std::string archive;
    const char* reason;
  };
  std::string up = "../../../../../../../../";
  std::vector<Case> cases = {
      {"path traversal", ok + TarEntry(up + marker, '0', "x") + end, "\"..\""},
      {"absolute path", ok + TarEntry(absolute, '0', "x") + end, "absolute"},
      {"escaping symlink", ok + TarEntry("link", '2', "", up + "tmp") + end, "outside"},
      {"write through a symlink",
       ok + TarEntry("d", '2', "", ".") + TarEntry("d/" + marker, '0', "x") + end, "symlink"},
      {"hard link outside", ok + TarEntry("h", '1', "", up + "etc/passwd") + end, "hard link"},
      {"device", ok + TarEntry("null", '3') + end, "device"},
  };
  for (const Case& c : cases) {
    uint64_t id = Submit(c.archive, "linux/amd64", "FROM busybox\n", "hostile:1");
    json build = Finished(id);
    ASSERT_EQ(build.value("state", ""), "failed") << c.what << ": " << build.dump();
    std::string error = build["jobs"][0].value("error", "");
    EXPECT_NE(error.find("unpacking the build context"), std::string::npos)
        << c.what << ": " << error;
    EXPECT_NE(error.find(c.reason), std::string::npos) << c.what << ": " << error;
  }
  EXPECT_FALSE(fs::exists(absolute));
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(farm_->dir(), ec); it != fs::end(it);
       it.increment(ec)) {
    EXPECT_EQ(it->path().filename().string().find(marker), std::string::npos) << it->path();
  }
  for (const auto& entry : fs::directory_iterator("/tmp")) {
    EXPECT_EQ(entry.path().filename().string().find(marker), std::string::npos) << entry.path();
  }
  EXPECT_EQ(RealBuild("after-hostile:1"), "succeeded");
}

TEST_F(HostileInputTest, ApiRefusesOversizeBodiesAndNamesTheInvalidField) {
  HttpResponse big = Request("POST", "/v1/builds", std::string(100000, ' '), "application/json");
  EXPECT_EQ(big.status, 413);
  EXPECT_NE(json::parse(big.body, nullptr, false).value("error", "").find("--max-request-bytes"),
            std::string::npos)
      << big.body;
  std::string huge(5 << 20, '\0');
  HttpResponse upload =
      Request("PUT", "/v1/contexts/" + Sha256Digest(huge), huge, "application/x-tar");
  EXPECT_EQ(upload.status, 413);
  EXPECT_NE(upload.body.find("--max-context-bytes"), std::string::npos) << upload.body;

  std::string context = TarEntry("f", '0', "x") + std::string(1024, '\0');
  std::string digest = Sha256Digest(context);
  ASSERT_EQ(Request("PUT", "/v1/contexts/" + digest, context, "application/x-tar").status, 201);
  json ok = {{"platforms", {"linux/amd64"}},
             {"tags", {farm_->registry() + "/app:1"}},
             {"context", digest},
             {"dockerfile", "FROM busybox\n"}};
  auto refusal = [&](const char* field, const json& value) {
    json body = ok;
    body[field] = value;
    HttpResponse response =
        Request("POST", "/v1/builds", body.dump(-1, ' ', false, json::error_handler_t::ignore),
                "application/json");
    EXPECT_EQ(response.status, 400) << field << ": " << response.body;
    return json::parse(response.body, nullptr, false).value("error", "");
  };
  EXPECT_NE(refusal("target", "2nd stage").find("field \"target\""), std::string::npos);
  EXPECT_NE(refusal("build_args", {{"V", std::string("a\0b", 3)}}).find("NUL"), std::string::npos);
  EXPECT_NE(refusal("build_args", {{"A-B", "x"}}).find("field \"build_args\""), std::string::npos);
  EXPECT_NE(refusal("dockerfile_path", std::string(5000, 'p')).find("field \"dockerfile_path\""),
            std::string::npos);
  EXPECT_NE(refusal("platforms", {"linux/amd64", "plan9/vax"}).find("field \"platforms\""),
            std::string::npos);
  EXPECT_NE(refusal("tags", {"UPPER/case:1"}).find("field \"tags\""), std::string::npos);
  EXPECT_NE(refusal("secrets", {{"../id", "eA=="}}).find("the secret id \"../id\""),
            std::string::npos);
  EXPECT_NE(refusal("secrets", {{"id", "not base64!"}}).find("must be its bytes in base64"),
            std::string::npos);
  // This farm's agent link is plaintext: secrets would cross it readable.
  EXPECT_NE(refusal("secrets", {{"id", "eA=="}}).find("this coordinator's agent link is plaintext"),
            std::string::npos);
  EXPECT_NE(refusal("tags", std::vector<std::string>(65, farm_->registry() + "/a:1"))
                .find("more than 64"),
            std::string::npos);
  EXPECT_NE(farm_->Pid("coordinator"), 0);
}

}  // namespace
}  // namespace manifold::test
