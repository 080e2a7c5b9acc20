// The CLI's coordinator client against a real HTTP server on 127.0.0.1 that serves canned
// answers, so the mapping of statuses, bodies and refused connections to errors is
// checked over the wire; and against a real HTTPS one with certificates of test CAs, for
// what it says when TLS stands in the way.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>
#include <type_traits>
#include <utility>

#include "cli/api_client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tls_certs.h"

namespace manifold {
namespace {

// An open, nameless file holding `bytes`, as the CLI's context spool is; closed at exit.
int ArchiveFile(const std::string& bytes) {
  FILE* file = std::tmpfile();
  std::fwrite(bytes.data(), 1, bytes.size(), file);
  std::fflush(file);
  return fileno(file);
}

// A cpp-httplib server on a free port of 127.0.0.1: plain (httplib::Server) or, as the
// coordinator serves the API with --tls-cert, HTTPS (httplib::SSLServer).
template <typename Server>
class LoopbackServer {
 public:
  template <typename... Args>
  explicit LoopbackServer(Args&&... args) : server_(std::forward<Args>(args)...) {
    if (!server_.is_valid()) {
      ADD_FAILURE() << "the server cannot start (its certificate or key does not load)";
      return;
    }
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~LoopbackServer() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  Server& server() { return server_; }
  std::string url() const {
    return (std::is_same_v<Server, httplib::SSLServer> ? "https" : "http") +
           std::string("://127.0.0.1:") + std::to_string(port_);
  }
  // "127.0.0.1:PORT", for a URL of the other scheme.
  std::string hostport() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  Server server_;
  int port_ = 0;
  std::thread thread_;
};
using FakeCoordinator = LoopbackServer<httplib::Server>;
using FakeTlsCoordinator = LoopbackServer<httplib::SSLServer>;

// A URL whose port refuses connections: one bound and closed without listening.
std::string RefusingUrl() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  ::close(fd);
  return "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port));
}

const char kBuildJson[] = R"({
  "id": 12, "state": "running", "platforms": ["linux/amd64", "linux/arm64"],
  "tags": ["127.0.0.1:5000/hello:latest"], "context": "sha256:abc", "index_digest": "",
  "index_media_type": null, "error": "", "created_at": "2026-11-29T03:00:00Z",
  "jobs": [{"id": 31, "platform": "linux/amd64", "state": "building", "attempt": 1,
            "agent": "host-a", "emulated": false, "manifest_digest": "", "manifest_size": 0,
            "error": ""},
           {"id": 32, "platform": "linux/arm64", "state": "assigned", "attempt": 2,
            "agent": "host-b", "emulated": true}]})";

TEST(ApiClient, UnknownBuildSaysHowToListBuilds) {
  FakeCoordinator fake;
  fake.server().Get(R"(/v1/builds/(\d+))", [](const httplib::Request&, httplib::Response& res) {
    res.status = 404;
    res.set_content(R"({"error": "no build 99: not found"})", "application/json");
  });
  Result<BuildInfo> build = ApiClient(fake.url()).GetBuild(99);
  ASSERT_FALSE(build.ok());
  EXPECT_EQ(build.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(build.status().message(), "no build 99 on the coordinator at " + fake.url() +
                                          " (list builds with `manifold ls`)");
  Result<LogPage> logs = ApiClient(fake.url()).GetLogs(99, 0);
  ASSERT_FALSE(logs.ok());
  EXPECT_EQ(logs.status().message(), build.status().message());
}

// A build the coordinator deleted under its --retention: its reason is the answer.
TEST(ApiClient, DeletedBuildSaysWhyItIsGone) {
  const std::string deleted =
      "build 7 was deleted: finished builds are pruned after the retention of 30 days (the "
      "coordinator's --retention)";
  FakeCoordinator fake;
  fake.server().Get(
      R"(/v1/builds/(\d+)(/logs)?)", [&](const httplib::Request&, httplib::Response& res) {
        res.status = 404;
        res.set_content(nlohmann::json{{"error", deleted}}.dump(), "application/json");
      });
  Result<BuildInfo> build = ApiClient(fake.url()).GetBuild(7);
  ASSERT_FALSE(build.ok());
  EXPECT_EQ(build.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(build.status().message(), deleted);
  Result<LogPage> logs = ApiClient(fake.url()).GetLogs(7, 0);
  ASSERT_FALSE(logs.ok());
  EXPECT_EQ(logs.status().message(), deleted);
}

TEST(ApiClient, BadRequestCarriesTheServersMessage) {
  FakeCoordinator fake;
  fake.server().Post("/v1/builds", [](const httplib::Request&, httplib::Response& res) {
    res.status = 400;
    res.set_content(R"({"error": "invalid tag \"A:b\": repository names must be lowercase"})",
                    "application/json");
  });
  BuildSubmission request;
  request.platforms = {"linux/amd64"};
  Result<BuildInfo> build = ApiClient(fake.url()).SubmitBuild(request, "");
  ASSERT_FALSE(build.ok());
  EXPECT_EQ(build.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(build.status().message(), "invalid tag \"A:b\": repository names must be lowercase");
}

TEST(ApiClient, ErrorWithoutJsonBodyNamesStatusAndRequest) {
  FakeCoordinator fake;
  fake.server().Get("/v1/builds", [](const httplib::Request&, httplib::Response& res) {
    res.status = 502;
    res.set_content("<html>Bad Gateway</html>", "text/html");
  });
  Result<std::vector<BuildInfo>> builds = ApiClient(fake.url()).ListBuilds(20);
  ASSERT_FALSE(builds.ok());
  EXPECT_EQ(builds.status().code(), Status::Code::kUnavailable);
  // The request's query is left out: a query can hold a credential (RedactUrl).
  EXPECT_EQ(builds.status().message(), "the coordinator at " + fake.url() +
                                           " answered HTTP 502 to GET " + fake.url() +
                                           "/v1/builds");
}

TEST(ApiClient, RefusedConnectionSaysHowToPointElsewhere) {
  std::string url = RefusingUrl();
  Result<BuildInfo> build = ApiClient(url).GetBuild(1);
  ASSERT_FALSE(build.ok());
  EXPECT_EQ(build.status().code(), Status::Code::kUnavailable);
  const std::string& message = build.status().message();
  EXPECT_EQ(message.rfind("cannot reach the coordinator at " + url + ": ", 0), 0u) << message;
  EXPECT_TRUE(message.ends_with(". Is it running? Set --server or MANIFOLD_SERVER.")) << message;
  // The reason is curl's, without the request repeated in front of it.
  EXPECT_EQ(message.find("GET "), std::string::npos) << message;
}

// Several coordinators: one that does not answer is passed over for the next, which is
// asked first from then on.
TEST(ApiClient, SeveralServersAreTriedInTurnAndTheOneThatAnsweredIsKept) {
  FakeCoordinator coordinator;
  int asked = 0;
  coordinator.server().Get("/v1/builds/12", [&](const httplib::Request&, httplib::Response& res) {
    ++asked;
    res.set_content(kBuildJson, "application/json");
  });
  const std::string refusing = RefusingUrl();
  ApiClient client(*NormalizeServerUrl(refusing + ", " + coordinator.url()));
  EXPECT_EQ(client.server(), refusing);
  ASSERT_TRUE(client.GetBuild(12).ok());
  EXPECT_EQ(client.server(), coordinator.url());
  ASSERT_TRUE(client.GetBuild(12).ok());
  EXPECT_EQ(asked, 2);
}

// A standby redirects what only the leader answers; the client repeats it there with its
// method, body and token (curl would drop the token on the way to another host).
TEST(ApiClient, FollowsAStandbysRedirectToTheLeaderWithItsBodyAndToken) {
  FakeCoordinator leader, standby;
  standby.server().Post("/v1/builds", [&](const httplib::Request&, httplib::Response& res) {
    res.status = 307;
    res.set_header("Location", leader.url() + "/v1/builds");
    res.set_content(R"({"error": "this coordinator does not lead"})", "application/json");
  });
  std::string body, authorization;
  leader.server().Post("/v1/builds", [&](const httplib::Request& req, httplib::Response& res) {
    body = req.body;
    authorization = req.get_header_value("Authorization");
    res.status = 201;
    res.set_content(kBuildJson, "application/json");
  });
  BuildSubmission submission;
  submission.platforms = {"linux/amd64"};
  submission.tags = {"127.0.0.1:5000/hello:latest"};
  submission.context = "sha256:abc";
  ApiAccess access;
  access.token = "mf_1_secret";
  Result<BuildInfo> build = ApiClient(standby.url(), access).SubmitBuild(submission, "");
  ASSERT_TRUE(build.ok()) << build.status().message();
  EXPECT_EQ(build->id, 12);
  EXPECT_NE(body.find("linux/amd64"), std::string::npos) << body;
  EXPECT_EQ(authorization, "Bearer mf_1_secret");
}

// The API over HTTPS with certificates of two test CAs: the coordinator's (its
// certificate names 127.0.0.1, another names only coordinator.example) and an unrelated one.
class ApiClientTls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir("manifold-api-tls");
    for (const char* name : {"ca", "other-ca"}) {
      std::filesystem::create_directories(dir_->path() + "/" + name);
    }
    Result<test::TestCertificate> ca = test::MakeTestCa(dir_->path() + "/ca");
    Result<test::TestCertificate> other = test::MakeTestCa(dir_->path() + "/other-ca");
    ASSERT_TRUE(ca.ok() && other.ok()) << ca.status().message() << other.status().message();
    ca_ = *ca;
    other_ca_ = *other;
    Result<test::TestCertificate> server =
        test::MakeServerCertificate(*ca, dir_->path(), "coordinator");
    Result<test::TestCertificate> misnamed =
        test::MakeServerCertificate(*ca, dir_->path(), "misnamed", "DNS:coordinator.example");
    ASSERT_TRUE(server.ok() && misnamed.ok())
        << server.status().message() << misnamed.status().message();
    server_ = *server;
    misnamed_ = *misnamed;
  }
  static void TearDownTestSuite() { delete dir_; }

  // A coordinator over HTTPS with `certificate`, answering GET /v1/builds.
  static std::unique_ptr<FakeTlsCoordinator> Start(const test::TestCertificate& certificate) {
    auto fake = std::make_unique<FakeTlsCoordinator>(certificate.cert_file.c_str(),
                                                     certificate.key_file.c_str());
    fake->server().Get("/v1/builds", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"builds": []})", "application/json");
    });
    return fake;
  }
  static std::string ListingError(const std::string& url, const std::string& ca_file) {
    ApiAccess access;
    access.ca_file = ca_file;
    Result<std::vector<BuildInfo>> builds = ApiClient(url, access).ListBuilds(1);
    return builds.ok() ? "listed" : builds.status().message();
  }

  static test::TempDir* dir_;
  static test::TestCertificate ca_, other_ca_, server_, misnamed_;
};
test::TempDir* ApiClientTls::dir_ = nullptr;
test::TestCertificate ApiClientTls::ca_, ApiClientTls::other_ca_, ApiClientTls::server_,
    ApiClientTls::misnamed_;

TEST_F(ApiClientTls, PlainHttpToAnHttpsCoordinatorSaysToUseHttps) {
  std::unique_ptr<FakeTlsCoordinator> fake = Start(server_);
  EXPECT_EQ(ListingError(fake->url(), ca_.cert_file), "listed");
  const std::string plain = "http://" + fake->hostport();
  std::string message = ListingError(plain, "");
  EXPECT_EQ(message.rfind("the coordinator at " + plain + " gave no HTTP answer: ", 0), 0u)
      << message;
  EXPECT_TRUE(message.ends_with(". It probably serves HTTPS (--tls-cert): use https://" +
                                fake->hostport() + " with --server or MANIFOLD_SERVER."))
      << message;
}

TEST_F(ApiClientTls, ACaFileThatDidNotSignTheCertificateIsNamedAndTheRightOneAskedFor) {
  std::unique_ptr<FakeTlsCoordinator> fake = Start(server_);
  // OpenSSL's reason follows, without the request repeated in front of it.
  const std::string prefix =
      "cannot verify the TLS certificate of the coordinator at " + fake->url() + ": SSL ";
  std::string wrong_ca = ListingError(fake->url(), other_ca_.cert_file);
  EXPECT_EQ(wrong_ca.rfind(prefix, 0), 0u) << wrong_ca;
  EXPECT_TRUE(wrong_ca.ends_with(". The certificate is not signed by the CA in " +
                                 other_ca_.cert_file +
                                 " (--ca-file or MANIFOLD_CA_FILE): pass the CA that signed the "
                                 "coordinator's certificate (its --tls-cert)."))
      << wrong_ca;
  // Without a CA file, the hint is to give one.
  std::string no_ca = ListingError(fake->url(), "");
  EXPECT_EQ(no_ca.rfind(prefix, 0), 0u) << no_ca;
  EXPECT_TRUE(
      no_ca.ends_with(". If its certificate comes from your own CA, pass that CA with --ca-file or "
                      "MANIFOLD_CA_FILE."))
      << no_ca;
}

TEST_F(ApiClientTls, ACertificateForAnotherNameSaysWhichNameItMustCarry) {
  std::unique_ptr<FakeTlsCoordinator> fake = Start(misnamed_);
  std::string message = ListingError(fake->url(), ca_.cert_file);
  EXPECT_EQ(
      message.rfind(
          "cannot verify the TLS certificate of the coordinator at " + fake->url() + ": SSL ", 0),
      0u)
      << message;
  EXPECT_TRUE(message.ends_with(
      ". The certificate must carry the host name 127.0.0.1 among its subject alternative "
      "names: reach the coordinator by a name its certificate (--tls-cert) carries, or give it "
      "a certificate for 127.0.0.1."))
      << message;
  EXPECT_EQ(message.find("--ca-file"), std::string::npos) << message;
}

TEST(ApiClient, AnswerThatIsNotJsonIsAnErrorNotACrash) {
  FakeCoordinator fake;
  fake.server().Get(R"(/v1/builds/(\d+))", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("{\"id\": 12, \"state\": ", "application/json");
  });
  fake.server().Get(R"(/v1/builds/(\d+)/logs)",
                    [](const httplib::Request&, httplib::Response& res) {
                      res.set_content(R"({"chunks": [{"seq": "seven"}]})", "application/json");
                    });
  Result<BuildInfo> build = ApiClient(fake.url()).GetBuild(12);
  ASSERT_FALSE(build.ok());
  EXPECT_NE(build.status().message().find("the answer is not JSON"), std::string::npos);
  Result<LogPage> logs = ApiClient(fake.url()).GetLogs(12, 0);
  ASSERT_FALSE(logs.ok());
  EXPECT_NE(logs.status().message().find("field \"seq\" is not an integer"), std::string::npos)
      << logs.status().message();
}

TEST(ApiClient, ContextHeadAndUpload) {
  FakeCoordinator fake;
  std::string stored_digest;
  std::string stored_body;
  fake.server().Get(R"(/v1/contexts/(.+))",
                    [&](const httplib::Request& req, httplib::Response& res) {
                      res.status = req.matches[1] == stored_digest ? 200 : 404;
                    });
  fake.server().Put(R"(/v1/contexts/(.+))",
                    [&](const httplib::Request& req, httplib::Response& res) {
                      stored_digest = req.matches[1];
                      stored_body = req.body;
                      res.status = 201;
                      res.set_content(R"({"digest": "x"})", "application/json");
                    });
  ApiClient api(fake.url());
  Result<bool> present = api.HasContext("sha256:aaa");
  ASSERT_TRUE(present.ok()) << present.status().message();
  EXPECT_FALSE(*present);
  ASSERT_TRUE(api.UploadContext("sha256:aaa", ArchiveFile(std::string("tar\0bytes", 9))).ok());
  EXPECT_EQ(stored_body, std::string("tar\0bytes", 9));
  present = api.HasContext("sha256:aaa");
  ASSERT_TRUE(present.ok());
  EXPECT_TRUE(*present);
}

TEST(ApiClient, UploadRejectedForSize) {
  FakeCoordinator fake;
  fake.server().Put(R"(/v1/contexts/(.+))", [](const httplib::Request&, httplib::Response& res) {
    res.status = 413;
    res.set_content(R"({"error": "context is 2 GiB; the maximum is 1 GiB"})", "application/json");
  });
  Status status = ApiClient(fake.url()).UploadContext("sha256:aaa", ArchiveFile("x"));
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "uploading the build context: context is 2 GiB; the maximum is 1 GiB");
}

TEST(ApiClient, SubmitSendsBodyAndIdempotencyKey) {
  FakeCoordinator fake;
  nlohmann::json received;
  std::string key;
  bool has_key = true;
  fake.server().Post("/v1/builds", [&](const httplib::Request& req, httplib::Response& res) {
    received = nlohmann::json::parse(req.body);
    has_key = req.has_header("Idempotency-Key");
    key = req.get_header_value("Idempotency-Key");
    res.status = 201;
    res.set_content(kBuildJson, "application/json");
  });
  BuildSubmission request;
  request.platforms = {"linux/amd64", "linux/arm64"};
  request.tags = {"127.0.0.1:5000/hello:latest"};
  request.context = "sha256:abc";
  request.dockerfile = "FROM busybox\n";
  request.dockerfile_path = "Dockerfile";
  request.build_args = {{"K", "V"}};
  request.target = "final";
  ApiClient api(fake.url());
  Result<BuildInfo> build = api.SubmitBuild(request, "ci-run-7");
  ASSERT_TRUE(build.ok()) << build.status().message();
  EXPECT_EQ(key, "ci-run-7");
  EXPECT_EQ(received, nlohmann::json::parse(R"({
    "platforms": ["linux/amd64", "linux/arm64"], "tags": ["127.0.0.1:5000/hello:latest"],
    "context": "sha256:abc", "dockerfile": "FROM busybox\n", "dockerfile_path": "Dockerfile",
    "build_args": {"K": "V"}, "target": "final"})"));
  EXPECT_EQ(build->id, 12);

  request.build_args.clear();
  ASSERT_TRUE(api.SubmitBuild(request, "").ok());
  EXPECT_FALSE(has_key);
  EXPECT_TRUE(received["build_args"].is_object());
}

TEST(ApiParsers, BuildObject) {
  Result<BuildInfo> build = ParseBuildInfo(kBuildJson);
  ASSERT_TRUE(build.ok()) << build.status().message();
  EXPECT_EQ(build->id, 12);
  EXPECT_EQ(build->state, "running");
  EXPECT_FALSE(build->IsFinal());
  EXPECT_EQ(build->platforms, (std::vector<std::string>{"linux/amd64", "linux/arm64"}));
  EXPECT_EQ(build->index_media_type, "");
  ASSERT_EQ(build->jobs.size(), 2u);
  EXPECT_EQ(build->jobs[1].platform, "linux/arm64");
  EXPECT_EQ(build->jobs[1].attempt, 2);
  EXPECT_EQ(build->jobs[1].agent, "host-b");
  EXPECT_TRUE(build->jobs[1].emulated);
}

TEST(ApiParsers, MalformedAnswersAreErrors) {
  for (const char* bad : {"", "[]", "null", "{}", R"({"id": "12"})", R"({"id": 1, "tags": "x"})",
                          R"({"id": 1, "tags": [1]})", R"({"id": 1, "jobs": {}})",
                          R"({"id": 1, "jobs": [{"emulated": "yes"}]})", R"({"id": 1.5})"}) {
    EXPECT_FALSE(ParseBuildInfo(bad).ok()) << bad;
  }
  for (const char* bad : {"", "{}", R"({"builds": {}})", R"([{"id": 0}])", "7"}) {
    EXPECT_FALSE(ParseBuildList(bad).ok()) << bad;
  }
  for (const char* bad :
       {"", "[]", R"({"chunks": 3})", R"({"chunks": [1]})", R"({"next": "1"})", R"({"done": 1})"}) {
    EXPECT_FALSE(ParseLogPage(bad).ok()) << bad;
  }
}

TEST(ApiParsers, BuildListEitherShape) {
  auto list = ParseBuildList(R"([{"id": 3}, {"id": 2}])");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].id, 3);
  list = ParseBuildList(R"({"builds": [{"id": 5, "state": "failed"}]})");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_TRUE((*list)[0].IsFinal());
}

TEST(ApiParsers, LogPage) {
  auto page = ParseLogPage(
      R"({"chunks": [{"seq": 7, "platform": "linux/arm64", "attempt": 1, "data": "STEP 1\n"}],
          "next": 7, "done": true})");
  ASSERT_TRUE(page.ok()) << page.status().message();
  ASSERT_EQ(page->chunks.size(), 1u);
  EXPECT_EQ(page->chunks[0].seq, 7);
  EXPECT_EQ(page->chunks[0].data, "STEP 1\n");
  EXPECT_EQ(page->next, 7);
  EXPECT_TRUE(page->done);
}

TEST(ServerUrl, Normalized) {
  EXPECT_EQ(*NormalizeServerUrl("http://127.0.0.1:7080/"), "http://127.0.0.1:7080");
  EXPECT_EQ(*NormalizeServerUrl("https://builds.example.com"), "https://builds.example.com");
  EXPECT_EQ(*NormalizeServerUrl("http://host:1/prefix//"), "http://host:1/prefix");
  EXPECT_EQ(*NormalizeServerUrl("http://a:1/, http://b:2"), "http://a:1,http://b:2");
  EXPECT_FALSE(NormalizeServerUrl("http://a:1,ftp://b").ok());
  EXPECT_FALSE(NormalizeServerUrl("http://a:1,").ok());
  for (const char* bad : {"", "127.0.0.1:7080", "ftp://host", "http://", "http:///x",
                          "http://host?x=1", "http://ho st"}) {
    Result<std::string> url = NormalizeServerUrl(bad);
    ASSERT_FALSE(url.ok()) << bad;
    EXPECT_EQ(url.status().message(), std::string("invalid coordinator URL \"") + bad +
                                          "\": use http://HOST:PORT, e.g. http://127.0.0.1:7080");
  }
}

}  // namespace
}  // namespace manifold
