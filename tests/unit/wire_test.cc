#include "common/wire.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "common/validate.h"
#include "common/version.h"

namespace manifold {
namespace {

Platform P(const char* text) { return *ParsePlatform(text); }

TEST(WireTest, AgentMessagesRoundTrip) {
  HelloMsg hello;
  hello.agent_id = "graviton-7";
  hello.version = kManifoldVersion;
  hello.hostname = "ip-10-0-0-7";
  hello.platforms = {{P("linux/arm64"), false}, {P("linux/arm/v7"), true}};
  hello.slots = 4;
  hello.labels = {{"zone", "eu-west-1a"}, {"pool", "spot"}};
  hello.running_jobs = {{12, 2}, {13, 1}};
  JobResultMsg ok{
      {12, 2},
      true,
      {"application/vnd.oci.image.manifest.v1+json", "sha256:" + std::string(64, 'a'), 761},
      "",
      false};
  JobResultMsg failed{{13, 1}, false, {}, "RUN exited with status 3", false};
  JobResultMsg retry{{14, 3}, false, {}, "registry answered 503", true};
  JobResultMsg refused{{15, 1}, false, {}, "agent a1 has no free slot", true, true};
  JobResultMsg cached = ok;
  cached.cache_pushed = "127.0.0.1:5000/cache/hello/linux-arm64:latest";
  std::vector<AgentMessage> messages = {hello,
                                        HeartbeatMsg{{{1, 1}}, 3},
                                        JobUpdateMsg{{12, 2}, JobPhase::kPushing},
                                        LogChunkMsg{{12, 2}, 9, std::string("out\0put\xff", 8)},
                                        ok,
                                        failed,
                                        retry,
                                        refused,
                                        cached,
                                        DrainingMsg{},
                                        GoodbyeMsg{}};
  for (const AgentMessage& message : messages) {
    std::string frame = EncodeAgentMessage(message);
    Result<AgentMessage> decoded = DecodeAgentMessage(frame);
    ASSERT_TRUE(decoded.ok()) << MessageName(message) << ": " << decoded.status().message();
    EXPECT_EQ(*decoded, message) << MessageName(message);
  }
}

TEST(WireTest, CoordinatorMessagesRoundTrip) {
  AssignMsg assign;
  assign.job = {31, 1};
  assign.build_id = 7;
  assign.platform = P("linux/arm64");
  assign.context_digest = "sha256:" + std::string(64, 'b');
  assign.context_url = "http://127.0.0.1:7080/v1/contexts/" + assign.context_digest;
  assign.dockerfile = "FROM busybox\nRUN uname -m\n";
  assign.dockerfile_path = "Dockerfile";
  assign.build_args = {{"VERSION", "1.2"}};
  assign.target = "runtime";
  assign.repositories = {"127.0.0.1:5000/hello", "127.0.0.1:5000/team/hello"};
  assign.labels = {{"org.example.team", "builds"}};
  assign.annotations = {{"org.opencontainers.image.title", "hello"}};
  assign.no_cache = true;
  assign.pull = true;
  assign.secrets = {{"npmrc", std::string("//registry/:_authToken=t\0k", 27)}, {"empty", ""}};
  assign.network = "host";
  assign.entitlements = {"network.host"};
  assign.limits = {uint64_t{3} << 30, 1500, 512, uint64_t{1} << 62};
  assign.cache = {
      {"127.0.0.1:5000/cache/hello/linux-arm64:latest", "127.0.0.1:5000/c/linux-arm64:x"},
      "127.0.0.1:5000/cache/hello/linux-arm64:latest",
      "max",
      7 * 86400};
  AssignMsg sandboxed = assign;  // the agent's sandbox network, limits all left to the agent
  sandboxed.network = "";
  sandboxed.entitlements = {};
  sandboxed.limits = {};
  AssignMsg offline = assign;
  offline.network = "none";
  offline.limits = {0, 250, 0, 0};
  std::vector<CoordinatorMessage> messages = {
      WelcomeMsg{"abc", 2000, {}, 0},
      WelcomeMsg{"abc",
                 2000,
                 {{"127.0.0.1:5000/hello",
                   {"linux", "arm64", ""},
                   "127.0.0.1:5000/cache/hello/linux-arm64:latest"},
                  {"127.0.0.1:5000/x", {"linux", "arm", "v7"}, "127.0.0.1:5000/c/linux-arm-v7:t"}},
                 86400},
      assign,
      sandboxed,
      offline,
      CancelMsg{{31, 1}},
      AckMsg{{31, 1}},
      RejectMsg{"protocol version 9 is not supported", true},
      DrainMsg{},
      LogFlowMsg{true},
      LogFlowMsg{false}};
  for (const CoordinatorMessage& message : messages) {
    Result<CoordinatorMessage> decoded =
        DecodeCoordinatorMessage(EncodeCoordinatorMessage(message));
    ASSERT_TRUE(decoded.ok()) << MessageName(message) << ": " << decoded.status().message();
    EXPECT_EQ(*decoded, message) << MessageName(message);
  }
}

TEST(WireTest, UnalignedFrameDecodes) {
  std::string frame = EncodeAgentMessage(HeartbeatMsg{{{5, 1}}});
  std::string buffer = "x" + frame;  // shift by one byte, as frames from TCP often are
  Result<AgentMessage> decoded = DecodeAgentMessage(std::string_view(buffer).substr(1));
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  EXPECT_EQ(std::get<HeartbeatMsg>(*decoded).running_jobs[0].job_id, 5u);
}

TEST(WireTest, HostileFramesAreRejectedNotFatal) {
  EXPECT_FALSE(DecodeAgentMessage("").ok());
  EXPECT_FALSE(DecodeAgentMessage("1234567").ok());                // not whole words
  EXPECT_FALSE(DecodeAgentMessage(std::string(64, '\xff')).ok());  // garbage segment table
  std::string frame = EncodeAgentMessage(HeartbeatMsg{{{1, 1}, {2, 2}}});
  EXPECT_FALSE(DecodeAgentMessage(frame.substr(0, frame.size() - 8)).ok());  // truncated
  WireLimits tight;
  tight.max_frame_bytes = 16;
  Result<AgentMessage> big = DecodeAgentMessage(frame, tight);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("exceeds the limit"), std::string::npos);
  // Every truncation and every single-byte corruption either decodes or is an error.
  for (size_t i = 0; i < frame.size(); ++i) {
    std::string corrupt = frame;
    corrupt[i] = static_cast<char>(corrupt[i] ^ 0x5a);
    (void)DecodeAgentMessage(corrupt);
  }
}

TEST(WireTest, InvalidValuesAreRejected) {
  HelloMsg hello;
  hello.agent_id = "a";
  hello.platforms = {{Platform{"linux", "sparc", ""}, false}};
  Result<AgentMessage> decoded = DecodeAgentMessage(EncodeAgentMessage(hello));
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("sparc"), std::string::npos);

  JobResultMsg result{
      {1, 1}, true, {"application/vnd.oci.image.manifest.v1+json", "md5:abc", 1}, "", false};
  EXPECT_FALSE(DecodeAgentMessage(EncodeAgentMessage(result)).ok());

  AssignMsg assign;
  assign.platform = P("linux/amd64");
  assign.context_digest = "sha256:short";
  EXPECT_FALSE(DecodeCoordinatorMessage(EncodeCoordinatorMessage(assign)).ok());
}

TEST(WireTest, TraversalAndNestingLimitsRefuseMessagesThatExceedThem) {
  HelloMsg hello;
  hello.agent_id = "a";
  hello.platforms = {{P("linux/amd64"), false}};
  for (int i = 0; i < 100; ++i) hello.labels["label" + std::to_string(i)] = "value";
  std::string frame = EncodeAgentMessage(hello);
  ASSERT_TRUE(DecodeAgentMessage(frame).ok());
  WireLimits few_words;
  few_words.traversal_limit_words = 64;
  Result<AgentMessage> walked = DecodeAgentMessage(frame, few_words);
  ASSERT_FALSE(walked.ok());
  EXPECT_NE(walked.status().message().find("malformed agent message"), std::string::npos)
      << walked.status().message();
  // root -> hello -> platforms -> offer -> platform is deeper than two levels.
  WireLimits shallow;
  shallow.nesting_limit = 2;
  EXPECT_FALSE(DecodeAgentMessage(frame, shallow).ok());
}

std::string FuzzInput(const std::string& name) {
  std::ifstream in(MANIFOLD_SOURCE_DIR "/tests/fuzz/wire/" + name, std::ios::binary);
  EXPECT_TRUE(in) << name << " is missing";
  std::string input((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return input.empty() ? input : input.substr(1);  // the first byte picks an alignment
}

// Found by tests/fuzz (wire): a 200-byte heartbeat whose list of running jobs claimed two
// million zero-size elements decoded into 32 MB of job references.
TEST(WireTest, SmallFrameCannotClaimAHugeList) {
  std::string frame = FuzzInput("regression_empty_list_amplification");
  ASSERT_LT(frame.size(), 512u);
  Result<AgentMessage> decoded = DecodeAgentMessage(frame);
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("traversal limit"), std::string::npos)
      << decoded.status().message();
}

// Found by tests/fuzz (wire): a text field with a NUL byte decoded, and encoding it again
// cut the string at the NUL, so a peer and the coordinator disagreed about the value.
TEST(WireTest, TextWithNulIsRefusedAndNeverCutByTheEncoder) {
  Result<CoordinatorMessage> decoded =
      DecodeCoordinatorMessage(FuzzInput("regression_nul_in_repository"));
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("NUL"), std::string::npos)
      << decoded.status().message();

  AssignMsg assign;
  assign.platform = P("linux/amd64");
  assign.context_digest = "sha256:" + std::string(64, 'a');
  assign.repositories = {std::string("127.0\0.1/app", 12)};
  assign.dockerfile = std::string("FROM a\0b", 8);
  Result<CoordinatorMessage> round = DecodeCoordinatorMessage(EncodeCoordinatorMessage(assign));
  ASSERT_TRUE(round.ok()) << round.status().message();
  const AssignMsg& got = std::get<AssignMsg>(*round);
  EXPECT_EQ(got.repositories, std::vector<std::string>{"127.0\xEF\xBF\xBD.1/app"});
  EXPECT_EQ(got.dockerfile,
            "FROM a\xEF\xBF\xBD"
            "b");
}

// A secret's id names a file under /run/secrets in the build: one that could be a path, or
// bytes over BuildKit's limit, make the whole frame malformed, and the message never quotes
// the secret's bytes.
TEST(WireTest, AssignWithABadSecretIsRefusedWithoutQuotingIt) {
  AssignMsg assign;
  assign.platform = P("linux/amd64");
  assign.context_digest = "sha256:" + std::string(64, 'a');
  for (const auto& [id, bytes] : std::vector<std::pair<std::string, std::string>>{
           {"../etc/passwd", "hunter2"},
           {"", "hunter2"},
           {"big", std::string(kMaxSecretBytes + 1, 'h') + "hunter2"}}) {
    assign.secrets = {{id, bytes}};
    Result<CoordinatorMessage> decoded = DecodeCoordinatorMessage(EncodeCoordinatorMessage(assign));
    ASSERT_FALSE(decoded.ok()) << id;
    EXPECT_EQ(decoded.status().message().find("hunter2"), std::string::npos)
        << decoded.status().message();
  }
}

// A network or entitlement the agent cannot name is a malformed frame, as a bad platform is,
// never a string passed on to the backend; the message quotes only a bounded part of it.
TEST(WireTest, AssignWithABadNetworkOrEntitlementIsRefused) {
  AssignMsg assign;
  assign.platform = P("linux/amd64");
  assign.context_digest = "sha256:" + std::string(64, 'a');
  for (const std::string& network :
       {std::string("default"), std::string("bridge"), std::string("host "),
        std::string("container:1"), std::string(1 << 20, 'h')}) {
    assign.network = network;
    Result<CoordinatorMessage> decoded = DecodeCoordinatorMessage(EncodeCoordinatorMessage(assign));
    ASSERT_FALSE(decoded.ok()) << network.substr(0, 64);
    EXPECT_LT(decoded.status().message().size(), 200u) << decoded.status().message();
  }
  assign.network = "host";
  for (const std::vector<std::string>& entitlements :
       {std::vector<std::string>{"security.insecure"}, std::vector<std::string>{""},
        std::vector<std::string>(kMaxEntitlements + 1, "network.host")}) {
    assign.entitlements = entitlements;
    EXPECT_FALSE(DecodeCoordinatorMessage(EncodeCoordinatorMessage(assign)).ok());
  }
}

}  // namespace
}  // namespace manifold
