// Who may talk to the coordinator, tested with real processes: agents on the CURVE link
// with an allow-list of keys (a farm from ops/farm.sh plus an agent the farm does not
// know), plaintext refused off loopback, API tokens (created, used, revoked, stored only
// as hashes), the context grant agents fetch with, and the API over TLS.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <zmq.hpp>

#include "common/curve_keys.h"
#include "common/digest.h"
#include "common/http_client.h"
#include "common/platform.h"
#include "common/tar.h"
#include "common/wire.h"
#include "tests/support/chunked_request.h"
#include "tests/support/farm.h"
#include "tests/support/ports.h"
#include "tests/support/postgres_server.h"
#include "tests/support/registry_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tls_certs.h"
#include "tests/support/wait.h"

namespace manifold::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

std::string Cli() { return BinaryDir() + "/cli/manifold"; }

// "linux/amd64" or "linux/arm64": what an agent here serves natively.
std::string HostPlatformText() {
  Result<Platform> host = HostPlatform();
  return host.ok() ? host->ToString() : "linux/amd64";
}
std::string CoordinatorBinary() { return BinaryDir() + "/coordinator/manifold-coordinator"; }

// ---- the agent link ----

class AgentLinkTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "---- coordinator log ----\n" << farm_.LogTail("coordinator") << "\n";
      std::cerr << "---- outsider log ----\n" << outsider_.LogTail() << "\n";
    }
  }

  // A native agent the farm did not start, with its own key pair and container storage.
  Status StartOutsider() {
    std::string dir = dir_.path();
    std::string storage = "[storage]\ndriver = \"vfs\"\nrunroot = \"" + dir +
                          "/storage/run\"\ngraphroot = \"" + dir + "/storage/graph\"\n";
    WriteFile(dir + "/storage.conf", storage);
    std::string farm_conf = ReadFile(farm_.dir() + "/farm/farm.conf");
    auto at = farm_conf.find("agent_port=");
    if (at == std::string::npos) return Status::Internal("farm.conf has no agent_port");
    std::string port = farm_conf.substr(at + 11, farm_conf.find('\n', at) - at - 11);
    return outsider_.Start(
        {BinaryDir() + "/agent/manifold-agent", "--coordinator", "tcp://127.0.0.1:" + port, "--id",
         "outsider", "--platform", "linux/amd64", "--slots", "1", "--metrics-listen", "127.0.0.1:0",
         "--work-dir", dir + "/work", "--curve-secret-key", dir + "/outsider.key",
         "--coordinator-public-key", keys_ + "/coordinator.pub"},
        {{"CONTAINERS_STORAGE_CONF", dir + "/storage.conf"},
         {"CONTAINERS_REGISTRIES_CONF", farm_.dir() + "/farm/registries.conf"},
         {"BUILDAH_ISOLATION", "chroot"}},
        dir + "/outsider.log");
  }

  bool AgentListed(const std::string& id) {
    Result<HttpResponse> agents = farm_.Api("GET", "/v1/agents");
    if (!agents.ok()) return false;
    json body = json::parse(agents->body, nullptr, false);
    if (!body.is_object()) return false;
    for (const json& agent : body.value("agents", json::array())) {
      if (agent.value("id", "") == id) return true;
    }
    return false;
  }

  void ReloadCoordinatorKeys() {
    pid_t coordinator = farm_.Pid("coordinator");
    ASSERT_GT(coordinator, 0);
    ASSERT_EQ(kill(coordinator, SIGHUP), 0);
  }

  // The only agent the farm starts serves linux/arm64, so a linux/amd64 job can go
  // nowhere but to the outsider.
  Farm farm_{FarmOptions{{"arm64-1:linux/arm64"}, {}}};
  TempDir dir_{"manifold-outsider"};
  Subprocess outsider_;
  std::string keys_;
};

TEST_F(AgentLinkTest, UnlistedKeyIsRefusedListedKeyBuildsRemovedKeyIsCutOff) {
  Status up = farm_.Up();
  ASSERT_TRUE(up.ok()) << up.message();
  keys_ = farm_.dir() + "/farm/keys";
  // The farm itself runs on CURVE: its agent came in with a listed key.
  EXPECT_NE(farm_.Log("coordinator").find("agent arm64-1"), std::string::npos);
  EXPECT_EQ(farm_.Log("coordinator").find("PLAINTEXT"), std::string::npos);

  CommandResult keygen = RunCommand({Cli(), "keygen", dir_.path() + "/outsider"}, seconds(30));
  ASSERT_EQ(keygen.exit_code, 0) << keygen.output;
  Result<std::string> outsider_key = ReadCurvePublicKey(dir_.path() + "/outsider.pub");
  ASSERT_TRUE(outsider_key.ok()) << outsider_key.status().message();
  std::string fingerprint = CurveKeyFingerprint(*outsider_key);
  Status started = StartOutsider();
  ASSERT_TRUE(started.ok()) << started.message();

  // Refused at the handshake: the agent says why, the coordinator logs the key.
  ASSERT_TRUE(WaitFor(
      [&] {
        return ReadFile(outsider_.log_file()).find("refused this agent's key " + fingerprint) !=
               std::string::npos;
      },
      milliseconds(30000)))
      << "the outsider never said it was refused";
  EXPECT_NE(farm_.Log("coordinator").find("CURVE key " + fingerprint + ": not in the agent key"),
            std::string::npos);

  // A build for its platform is submitted; it stays queued while the outsider is refused.
  Subprocess build;
  ASSERT_TRUE(build
                  .Start({Cli(), "build", "--progress", "plain", "--platform", "linux/amd64", "-t",
                          farm_.registry() + "/secure/hello:1", SourceDir() + "/examples/hello"},
                         {{"MANIFOLD_SERVER", farm_.server_url()}}, dir_.path() + "/build.log")
                  .ok());
  uint64_t build_id = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        Result<HttpResponse> builds = farm_.Api("GET", "/v1/builds");
        if (!builds.ok()) return false;
        json body = json::parse(builds->body, nullptr, false);
        if (!body.is_object() || body.value("builds", json::array()).empty()) return false;
        build_id = body["builds"][0].value("id", uint64_t{0});
        return build_id != 0;
      },
      milliseconds(60000)));
  Result<json> queued = farm_.GetBuild(build_id);
  ASSERT_TRUE(queued.ok()) << queued.status().message();
  EXPECT_EQ((*queued)["state"], "queued") << queued->dump();
  EXPECT_EQ((*queued)["jobs"][0]["agent"], "") << queued->dump();
  EXPECT_FALSE(AgentListed("outsider"));
  EXPECT_TRUE(outsider_.Running());  // it keeps trying, for an operator to let it in

  // Listed and reloaded: it connects without a restart and builds the job.
  std::string allow_list = ReadFile(keys_ + "/agent-keys");
  WriteFile(keys_ + "/agent-keys", allow_list + ReadFile(dir_.path() + "/outsider.pub"));
  ReloadCoordinatorKeys();
  int build_exit = build.Wait(milliseconds(300000));
  ASSERT_EQ(build_exit, 0) << ReadFile(dir_.path() + "/build.log");
  Result<json> built = farm_.GetBuild(build_id);
  ASSERT_TRUE(built.ok());
  EXPECT_EQ((*built)["state"], "succeeded") << built->dump();
  EXPECT_EQ((*built)["jobs"][0]["agent"], "outsider") << built->dump();
  EXPECT_NE(farm_.Log("coordinator").find("key outsider (" + fingerprint + ")"), std::string::npos);

  // Removed and reloaded: cut off at once, told why, and gone from the agent list.
  WriteFile(keys_ + "/agent-keys", allow_list);
  ReloadCoordinatorKeys();
  int outsider_exit = outsider_.Wait(milliseconds(30000));
  EXPECT_NE(outsider_exit, 0) << "the outsider should have stopped with an error";
  EXPECT_NE(ReadFile(outsider_.log_file())
                .find("key " + fingerprint + " was removed from the coordinator's agent key list"),
            std::string::npos);
  ASSERT_TRUE(WaitFor([&] { return !AgentListed("outsider"); }, milliseconds(10000)));
  EXPECT_NE(farm_.Log("coordinator").find("cutting it off"), std::string::npos);
  EXPECT_TRUE(AgentListed("arm64-1"));  // the listed agent is untouched
}

// ---- coordinator processes for the API and the plaintext rules ----

class CoordinatorSecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status pg = postgres_.Start();
    ASSERT_TRUE(pg.ok()) << pg.message();
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << "---- coordinator log ----\n" << coordinator_.LogTail();
  }

  std::vector<std::string> CoordinatorArgs(const std::string& api_host,
                                           const std::string& agent_endpoint) {
    api_port_ = FreeTcpPort();
    return {CoordinatorBinary(),
            "--database-url",
            postgres_.url(),
            "--api-listen",
            api_host + ":" + std::to_string(api_port_),
            "--agent-listen",
            agent_endpoint,
            "--state-dir",
            dir_.path() + "/state",
            "--metrics-listen",
            "127.0.0.1:" + std::to_string(FreeTcpPort())};
  }

  // Starts the coordinator with loopback listeners and `extra` flags; waits for /readyz.
  void StartCoordinator(std::vector<std::string> extra, const std::string& scheme = "http") {
    agent_endpoint_ = "tcp://127.0.0.1:" + std::to_string(FreeTcpPort());
    std::vector<std::string> argv = CoordinatorArgs("127.0.0.1", agent_endpoint_);
    argv.insert(argv.end(), extra.begin(), extra.end());
    ASSERT_TRUE(coordinator_.Start(argv, {}, dir_.path() + "/coordinator.log").ok());
    server_ = scheme + "://127.0.0.1:" + std::to_string(api_port_);
    ASSERT_TRUE(
        WaitFor([&] { return Request("GET", "/readyz").status == 200; }, milliseconds(20000)))
        << coordinator_.LogTail();
  }

  HttpResponse Request(const std::string& method, const std::string& path,
                       const std::string& token = "", const std::string& body = "",
                       const std::string& content_type = "application/json") {
    HttpRequest request;
    request.method = method;
    request.url = server_ + path;
    request.body = body;
    request.headers = {{"Content-Type", content_type}};
    if (!token.empty()) request.headers.emplace_back("Authorization", "Bearer " + token);
    request.extra_ca_pem = ca_pem_;
    request.timeout_ms = 10000;
    Result<HttpResponse> response = HttpClient().Send(request);
    return response.ok() ? *response : HttpResponse{};
  }

  // A real agent serving this host's platform, with its own work dir and container storage.
  // `instance` names the agent's directory and log when two agents share a name.
  Status StartAgent(Subprocess* agent, const std::string& name,
                    const std::vector<std::string>& flags, const std::string& instance = "") {
    const std::string& file_name = instance.empty() ? name : instance;
    std::string dir = dir_.path() + "/" + file_name;
    std::filesystem::create_directories(dir);
    WriteFile(dir + "/storage.conf", "[storage]\ndriver = \"vfs\"\nrunroot = \"" + dir +
                                         "/run\"\ngraphroot = \"" + dir + "/graph\"\n");
    std::vector<std::string> argv = {BinaryDir() + "/agent/manifold-agent",
                                     "--coordinator",
                                     agent_endpoint_,
                                     "--id",
                                     name,
                                     "--metrics-listen",
                                     "127.0.0.1:0",
                                     "--work-dir",
                                     dir + "/work"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    return agent->Start(
        argv, {{"CONTAINERS_STORAGE_CONF", dir + "/storage.conf"}, {"BUILDAH_ISOLATION", "chroot"}},
        dir_.path() + "/" + file_name + ".log");
  }

  // Key pairs in DIR/keys: coordinator, agent and twin (both allowed), impostor (not).
  std::string MakeKeys() {
    std::string keys = dir_.path() + "/keys";
    std::filesystem::create_directories(keys);
    for (const char* name : {"coordinator", "agent", "impostor", "twin"}) {
      CommandResult keygen = RunCommand({Cli(), "keygen", keys + "/" + name}, seconds(30));
      EXPECT_EQ(keygen.exit_code, 0) << keygen.output;
    }
    WriteFile(keys + "/agent-keys", ReadFile(keys + "/agent.pub") + ReadFile(keys + "/twin.pub"));
    return keys;
  }

  CommandResult Token(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {CoordinatorBinary(), "--database-url", postgres_.url(),
                                     "token"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, seconds(60));
  }

  // Creates a token and returns it (the last line of stdout).
  std::string CreateToken(const std::string& name) {
    CommandResult created = Token({"create", "--name", name});
    EXPECT_EQ(created.exit_code, 0) << created.output;
    std::istringstream lines(created.output);
    std::string line, token;
    while (std::getline(lines, line)) {
      if (line.starts_with("mf_")) token = line;
    }
    EXPECT_FALSE(token.empty()) << created.output;
    return token;
  }

  CommandResult Manifold(const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env = {}) {
    std::vector<std::string> argv = {Cli(), "--server", server_};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, seconds(60), env);
  }

  TempDir dir_{"manifold-security"};
  PostgresServer postgres_;
  Subprocess coordinator_;
  int api_port_ = 0;
  std::string agent_endpoint_;
  std::string server_;
  std::string ca_pem_;
};

TEST_F(CoordinatorSecurityTest, PlaintextAgentsAndOpenApiAreRefusedOffLoopback) {
  CommandResult plaintext = RunCommand(
      CoordinatorArgs("127.0.0.1", "tcp://0.0.0.0:" + std::to_string(FreeTcpPort())), seconds(60));
  EXPECT_EQ(plaintext.exit_code, 1) << plaintext.output;
  EXPECT_NE(plaintext.output.find("refusing plaintext agent connections"), std::string::npos)
      << plaintext.output;

  std::vector<std::string> open_api =
      CoordinatorArgs("0.0.0.0", "tcp://127.0.0.1:" + std::to_string(FreeTcpPort()));
  open_api.insert(open_api.end(), {"--api-auth", "off"});
  CommandResult refused = RunCommand(open_api, seconds(60));
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("--api-auth off is allowed only"), std::string::npos)
      << refused.output;

  // On loopback, plaintext runs, with a loud warning.
  StartCoordinator({});
  EXPECT_NE(ReadFile(coordinator_.log_file()).find("PLAINTEXT AGENT LINK"), std::string::npos);
}

TEST_F(CoordinatorSecurityTest, AgentSaysWhyItCannotConnect) {
  std::string keys = MakeKeys();
  StartCoordinator(
      {"--curve-secret-key", keys + "/coordinator.key", "--agent-keys", keys + "/agent-keys"});

  // Each agent runs until its log says how it fared; only the listed one gets in.
  auto expect_explained = [&](const std::string& name, std::vector<std::string> flags,
                              const std::string& explanation, bool admitted = false) {
    Subprocess agent;
    ASSERT_TRUE(StartAgent(&agent, name, flags).ok());
    EXPECT_TRUE(
        WaitFor([&] { return ReadFile(agent.log_file()).find(explanation) != std::string::npos; },
                milliseconds(20000)))
        << name << ":\n"
        << agent.LogTail();
    EXPECT_TRUE(agent.Running()) << name << " should keep retrying";
    bool listed = Request("GET", "/v1/agents").body.find("\"" + name + "\"") != std::string::npos;
    EXPECT_EQ(listed, admitted) << name;
  };
  expect_explained("plain", {}, "the coordinator requires CURVE");
  expect_explained("wrong-server-key",
                   {"--curve-secret-key", keys + "/agent.key", "--coordinator-public-key",
                    keys + "/impostor.pub"},
                   "--coordinator-public-key is probably not the coordinator's key");
  expect_explained("unlisted",
                   {"--curve-secret-key", keys + "/impostor.key", "--coordinator-public-key",
                    keys + "/coordinator.pub"},
                   "the coordinator refused this agent's key");
  // The listed key gets in.
  expect_explained("listed",
                   {"--curve-secret-key", keys + "/agent.key", "--coordinator-public-key",
                    keys + "/coordinator.pub"},
                   "connected to " + agent_endpoint_, /*admitted=*/true);

  // Another allowed key cannot take over a connected agent's id (results are fenced on it);
  // refused, the other agent keeps saying hello (either may be the impostor) and joins once
  // the first leaves.
  Subprocess first, second;
  ASSERT_TRUE(StartAgent(&first, "shared",
                         {"--curve-secret-key", keys + "/agent.key", "--coordinator-public-key",
                          keys + "/coordinator.pub"})
                  .ok());
  ASSERT_TRUE(
      WaitFor([&] { return ReadFile(first.log_file()).find("connected to ") != std::string::npos; },
              milliseconds(20000)));
  ASSERT_TRUE(StartAgent(&second, "shared",
                         {"--curve-secret-key", keys + "/twin.key", "--coordinator-public-key",
                          keys + "/coordinator.pub"},
                         "shared-twin")
                  .ok());
  auto refusals = [&] {
    std::string log = ReadFile(coordinator_.log_file());
    size_t count = 0;
    for (size_t at = log.find("refused agent shared"); at != std::string::npos;
         at = log.find("refused agent shared", at + 1)) {
      ++count;
    }
    return count;
  };
  ASSERT_TRUE(WaitFor([&] { return refusals() >= 2; }, milliseconds(20000)))
      << "the second agent did not say hello again:\n"
      << second.LogTail();
  EXPECT_TRUE(second.Running()) << second.LogTail();
  std::string refused = ReadFile(second.log_file());
  EXPECT_NE(refused.find("the coordinator did not take this agent: agent id shared is in "
                         "use by another key ("),
            std::string::npos)
      << refused;
  EXPECT_NE(refused.find("give each agent its own --id"), std::string::npos) << refused;
  EXPECT_TRUE(first.Running());
  EXPECT_EQ(refused.find("connected to "), std::string::npos) << refused;

  EXPECT_EQ(first.Stop(milliseconds(20000)), 0) << first.LogTail();
  EXPECT_TRUE(WaitFor(
      [&] { return ReadFile(second.log_file()).find("connected to ") != std::string::npos; },
      milliseconds(20000)))
      << second.LogTail();
  EXPECT_NE(Request("GET", "/v1/agents").body.find("\"shared\""), std::string::npos);
}

TEST_F(CoordinatorSecurityTest, CurveAgentBuildsThroughAnApiThatRequiresTokens) {
  RegistryServer registry;
  Status registry_started = registry.Start();
  ASSERT_TRUE(registry_started.ok()) << registry_started.message();
  std::string keys = MakeKeys();
  std::string token = CreateToken("ci");
  StartCoordinator({"--api-auth", "on", "--curve-secret-key", keys + "/coordinator.key",
                    "--agent-keys", keys + "/agent-keys"});
  Subprocess agent;
  ASSERT_TRUE(StartAgent(&agent, "builder",
                         {"--curve-secret-key", keys + "/agent.key", "--coordinator-public-key",
                          keys + "/coordinator.pub"})
                  .ok());

  // No base image is needed: the build copies a file into an empty image.
  std::string context = dir_.path() + "/context";
  std::filesystem::create_directories(context);
  WriteFile(context + "/Dockerfile", "FROM scratch\nCOPY greeting.txt /\n");
  WriteFile(context + "/greeting.txt", "hello over CURVE\n");
  CommandResult build = Manifold({"build", "--progress", "plain", "--platform", HostPlatformText(),
                                  "-t", registry.host() + "/secure/greeting:1", context},
                                 {{"MANIFOLD_TOKEN", token}});
  EXPECT_EQ(build.exit_code, 0) << build.output << "\n---- agent log ----\n" << agent.LogTail();
  // The agent fetched the context with the grant from its assignment, not with a token.
  EXPECT_NE(build.output.find("fetched build context"), std::string::npos) << build.output;
  EXPECT_NE(ReadFile(coordinator_.log_file()).find("key agent ("), std::string::npos);
}

TEST_F(CoordinatorSecurityTest, ApiAnswers401WithoutAValidTokenAndWorksWithOne) {
  std::string ci = CreateToken("ci");
  std::string old = CreateToken("old");
  ASSERT_FALSE(ci.empty());
  CommandResult duplicate = Token({"create", "--name", "ci"});
  EXPECT_EQ(duplicate.exit_code, 1);
  EXPECT_NE(duplicate.output.find("a token named ci exists"), std::string::npos);
  StartCoordinator({"--api-auth", "on"});

  auto expect_401 = [&](const std::string& token, const std::string& why) {
    HttpResponse response = Request("GET", "/v1/builds", token);
    EXPECT_EQ(response.status, 401) << why << ": " << response.body;
    json body = json::parse(response.body, nullptr, false);
    EXPECT_TRUE(body.is_object() && body.contains("error")) << why << ": " << response.body;
    EXPECT_EQ(response.Header("content-type"), "application/json") << why;
  };
  expect_401("", "no token");
  expect_401("mf_0123456789abcdef_" + std::string(64, 'a'), "unknown token");
  expect_401(ci.substr(0, ci.size() - 1) + (ci.back() == '0' ? "1" : "0"), "altered token");
  expect_401("not-a-token", "malformed token");
  EXPECT_EQ(Request("GET", "/v1/builds", ci).status, 200);
  EXPECT_EQ(Request("GET", "/v1/builds", old).status, 200);
  // A context upload without a token is refused before its body is stored.
  std::string digest = Sha256Digest("x");
  EXPECT_EQ(Request("PUT", "/v1/contexts/" + digest, "", "x", "application/x-tar").status, 401);
  // Probes stay open (the default of --api-open-probes).
  EXPECT_EQ(Request("GET", "/healthz").status, 200);

  // Revoked: refused at once, the other token unaffected.
  CommandResult revoked = Token({"revoke", "old"});
  EXPECT_EQ(revoked.exit_code, 0) << revoked.output;
  expect_401(old, "revoked token");
  EXPECT_EQ(Request("GET", "/v1/builds", ci).status, 200);
  CommandResult again = Token({"revoke", "old"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.output.find("no token named old is in force"), std::string::npos);

  // The list and the database hold names and hashes, never a token.
  CommandResult list = Token({"list"});
  EXPECT_EQ(list.exit_code, 0) << list.output;
  EXPECT_NE(list.output.find("ci\t"), std::string::npos) << list.output;
  EXPECT_NE(list.output.find("old\t"), std::string::npos) << list.output;
  CommandResult dump = RunCommand(
      {"psql", postgres_.url(), "-At", "-c", "SELECT id, name, token_hash FROM api_tokens"},
      seconds(30));
  ASSERT_EQ(dump.exit_code, 0) << dump.output;
  for (const std::string& token : {ci, old}) {
    EXPECT_EQ(list.output.find(token), std::string::npos);
    EXPECT_EQ(dump.output.find(token.substr(20)), std::string::npos) << "secret part stored";
    EXPECT_NE(dump.output.find(DigestHex(Sha256Digest(token))), std::string::npos) << dump.output;
  }

  // The CLI: refused without a token, saying what to do; works with MANIFOLD_TOKEN or --token.
  CommandResult anonymous = Manifold({"ls"});
  EXPECT_EQ(anonymous.exit_code, 1) << anonymous.output;
  EXPECT_NE(anonymous.output.find("HTTP 401"), std::string::npos) << anonymous.output;
  EXPECT_NE(anonymous.output.find("MANIFOLD_TOKEN"), std::string::npos) << anonymous.output;
  EXPECT_EQ(Manifold({"ls"}, {{"MANIFOLD_TOKEN", ci}}).exit_code, 0);
  EXPECT_EQ(Manifold({"--token", ci, "agents"}).exit_code, 0);
  EXPECT_EQ(Manifold({"ls"}, {{"MANIFOLD_TOKEN", old}}).exit_code, 1);
}

TEST_F(CoordinatorSecurityTest, AgentsFetchContextsWithTheGrantInTheirAssignment) {
  std::string token = CreateToken("ci");
  StartCoordinator({"--api-auth", "on"});
  std::string context;
  ASSERT_TRUE(WriteTarFromDirectory(SourceDir() + "/examples/hello", {}, &context).ok());
  std::string digest = Sha256Digest(context);
  ASSERT_EQ(Request("PUT", "/v1/contexts/" + digest, token, context, "application/x-tar").status,
            201);

  zmq::context_t zmq_context(1);
  zmq::socket_t agent(zmq_context, zmq::socket_type::dealer);
  agent.set(zmq::sockopt::linger, 0);
  agent.connect(agent_endpoint_);
  HelloMsg hello;
  hello.agent_id = "fetcher";
  hello.hostname = "fetcher";
  hello.platforms = {{*ParsePlatform("linux/amd64"), false}};
  std::string frame = EncodeAgentMessage(hello);
  agent.send(zmq::buffer(frame));
  json request = {{"platforms", {"linux/amd64"}},
                  {"tags", {"127.0.0.1:1/unused:latest"}},
                  {"context", digest},
                  {"dockerfile", "FROM busybox\n"}};
  ASSERT_EQ(Request("POST", "/v1/builds", token, request.dump()).status, 201);

  std::optional<AssignMsg> assign;
  ASSERT_TRUE(WaitFor(
      [&] {
        zmq::message_t received;
        while (agent.recv(received, zmq::recv_flags::dontwait)) {
          Result<CoordinatorMessage> message = DecodeCoordinatorMessage(received.to_string_view());
          if (message.ok() && std::holds_alternative<AssignMsg>(*message)) {
            assign = std::get<AssignMsg>(*message);
          }
        }
        return assign.has_value();
      },
      milliseconds(20000), milliseconds(50)));
  ASSERT_NE(assign->context_url.find("?grant="), std::string::npos) << assign->context_url;

  HttpRequest fetch;
  fetch.url = assign->context_url;  // no token: the grant is the permission
  Result<HttpResponse> fetched = HttpClient().Send(fetch);
  ASSERT_TRUE(fetched.ok()) << fetched.status().message();
  EXPECT_EQ(fetched->status, 200) << fetched->body;
  EXPECT_EQ(Sha256Digest(fetched->body), digest);

  std::string altered = assign->context_url;
  altered.back() = altered.back() == '0' ? '1' : '0';
  fetch.url = altered;
  EXPECT_EQ(HttpClient().Send(fetch)->status, 401);
  // The grant names one context; it opens no other path.
  std::string grant = assign->context_url.substr(assign->context_url.find("?grant="));
  EXPECT_EQ(Request("GET", "/v1/builds" + grant).status, 401);
}

// With tokens required, bodies are still held to their route's limit: a declared size is
// refused unread, and a chunked body (no size declared) is cut off at the limit.
TEST_F(CoordinatorSecurityTest, BodiesOverTheLimitAre413WithAuthOnAndWhenChunked) {
  std::string token = CreateToken("ci");
  StartCoordinator({"--api-auth", "on", "--max-request-bytes", "65536", "--max-context-bytes",
                    std::to_string(1 << 20)});
  HttpResponse declared = Request("POST", "/v1/builds", token, std::string(100000, ' '));
  EXPECT_EQ(declared.status, 413) << declared.body;
  EXPECT_NE(declared.body.find("--max-request-bytes"), std::string::npos) << declared.body;

  const std::vector<std::pair<std::string, std::string>> authorized = {
      {"Authorization", "Bearer " + token}};
  std::string huge(64 << 20, 'x');
  Result<ChunkedAnswer> upload =
      SendChunked(api_port_, "PUT", "/v1/contexts/" + Sha256Digest(huge), authorized, huge);
  ASSERT_TRUE(upload.ok()) << upload.status().message();
  EXPECT_EQ(upload->status, 413) << upload->body;
  EXPECT_NE(upload->body.find("--max-context-bytes"), std::string::npos) << upload->body;
  EXPECT_LT(upload->body_bytes_sent, huge.size()) << "the server read all of the body";
  Result<ChunkedAnswer> request = SendChunked(api_port_, "POST", "/v1/builds", authorized, huge);
  ASSERT_TRUE(request.ok()) << request.status().message();
  EXPECT_EQ(request->status, 413) << request->body;
  EXPECT_NE(request->body.find("--max-request-bytes"), std::string::npos) << request->body;
  EXPECT_LT(request->body_bytes_sent, huge.size()) << "the server read all of the body";

  // A chunked upload within the limit is stored whole; without a valid token it is not.
  std::string context;
  ASSERT_TRUE(WriteTarFromDirectory(SourceDir() + "/examples/hello", {}, &context).ok());
  std::string path = "/v1/contexts/" + Sha256Digest(context);
  for (const auto& [header, why] : std::vector<std::pair<std::string, std::string>>{
           {"", "no token"}, {"Bearer mf_0123456789abcdef_" + std::string(64, 'a'), "bad token"}}) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!header.empty()) headers.emplace_back("Authorization", header);
    Result<ChunkedAnswer> refused = SendChunked(api_port_, "PUT", path, headers, context, 1000);
    ASSERT_TRUE(refused.ok()) << why << ": " << refused.status().message();
    EXPECT_EQ(refused->status, 401) << why << ": " << refused->body;
  }
  EXPECT_EQ(Request("GET", path, token).status, 404);
  Result<ChunkedAnswer> stored = SendChunked(api_port_, "PUT", path, authorized, context, 1000);
  ASSERT_TRUE(stored.ok()) << stored.status().message();
  EXPECT_EQ(stored->status, 201) << stored->body;
  HttpResponse fetched = Request("GET", path, token);
  EXPECT_EQ(fetched.status, 200);
  EXPECT_EQ(fetched.body, context);
}

TEST_F(CoordinatorSecurityTest, ApiOverTlsWorksWithTheCaAndFailsWithoutIt) {
  std::string certs = dir_.path() + "/certs";
  std::filesystem::create_directories(certs);
  Result<TestCertificate> ca = MakeTestCa(certs);
  ASSERT_TRUE(ca.ok()) << ca.status().message();
  Result<TestCertificate> server = MakeServerCertificate(*ca, certs, "coordinator");
  ASSERT_TRUE(server.ok()) << server.status().message();
  std::string token = CreateToken("ci");
  ca_pem_ = ReadFile(ca->cert_file);
  StartCoordinator(
      {"--api-auth", "on", "--tls-cert", server->cert_file, "--tls-key", server->key_file},
      "https");

  EXPECT_EQ(Request("GET", "/v1/builds", token).status, 200);
  EXPECT_EQ(Request("GET", "/v1/builds").status, 401);
  CommandResult trusted = Manifold({"--ca-file", ca->cert_file, "ls"}, {{"MANIFOLD_TOKEN", token}});
  EXPECT_EQ(trusted.exit_code, 0) << trusted.output;
  CommandResult from_env =
      Manifold({"ls"}, {{"MANIFOLD_TOKEN", token}, {"MANIFOLD_CA_FILE", ca->cert_file}});
  EXPECT_EQ(from_env.exit_code, 0) << from_env.output;

  CommandResult untrusted = Manifold({"ls"}, {{"MANIFOLD_TOKEN", token}});
  EXPECT_EQ(untrusted.exit_code, 1) << untrusted.output;
  EXPECT_NE(untrusted.output.find("cannot verify the TLS certificate"), std::string::npos)
      << untrusted.output;
  EXPECT_NE(untrusted.output.find("--ca-file"), std::string::npos) << untrusted.output;

  // A CA that did not sign the coordinator's certificate is named as such.
  std::filesystem::create_directories(certs + "/other");
  Result<TestCertificate> other_ca = MakeTestCa(certs + "/other");
  ASSERT_TRUE(other_ca.ok()) << other_ca.status().message();
  CommandResult wrong_ca =
      Manifold({"--ca-file", other_ca->cert_file, "ls"}, {{"MANIFOLD_TOKEN", token}});
  EXPECT_EQ(wrong_ca.exit_code, 1) << wrong_ca.output;
  EXPECT_NE(
      wrong_ca.output.find("The certificate is not signed by the CA in " + other_ca->cert_file),
      std::string::npos)
      << wrong_ca.output;

  // Plain HTTP to the TLS port gets no API answer; the CLI says to use https.
  HttpRequest plain;
  const std::string address = "127.0.0.1:" + std::to_string(api_port_);
  plain.url = "http://" + address + "/v1/builds";
  plain.timeout_ms = 5000;
  Result<HttpResponse> answer = HttpClient().Send(plain);
  EXPECT_TRUE(!answer.ok() || answer->status != 200);
  server_ = "http://" + address;
  CommandResult over_http = Manifold({"ls"}, {{"MANIFOLD_TOKEN", token}});
  EXPECT_EQ(over_http.exit_code, 1) << over_http.output;
  EXPECT_NE(over_http.output.find("It probably serves HTTPS (--tls-cert): use https://" + address +
                                  " with --server or MANIFOLD_SERVER."),
            std::string::npos)
      << over_http.output;
}

}  // namespace
}  // namespace manifold::test
