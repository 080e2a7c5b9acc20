// The registry client's ways of trusting and being trusted, against a real registry:
// an identity token from config.json exchanged at the token server (OAuth2 refresh grant),
// plain HTTP only for registries listed insecure, and client certificates from certs.d
// for a registry that requires mutual TLS. Each through the library and the CLI, with
// the errors a person sees when something is missing.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "agent/job_runner.h"
#include "agent/synthetic_builder.h"
#include "common/digest.h"
#include "common/registry.h"
#include "common/tar.h"
#include "coordinator/merger.h"
#include "tests/support/push_image.h"
#include "tests/support/registry_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_image.h"
#include "tests/support/tls_certs.h"
#include "tests/support/token_server.h"

namespace manifold {
namespace {

using test::CommandResult;
using test::MakeTestImage;
using test::RegistryServer;
using test::RunCommand;
using test::TempDir;
using test::TestImage;

constexpr auto kTimeout = std::chrono::seconds(60);
constexpr char kService[] = "manifold-test-registry";
constexpr char kIssuer[] = "manifold-test-issuer";
// Secrets that must never show up in a message, an output or a log.
constexpr char kIdentityToken[] = "idt-7f3a9c-pusher-refresh";
constexpr char kWrongIdentityToken[] = "idt-0000-revoked-refresh";

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// `manifold ARGS...` with DOCKER_CONFIG=docker_config.
CommandResult Manifold(std::vector<std::string> args, const std::string& docker_config) {
  args.insert(args.begin(), std::string(MANIFOLD_BINARY_DIR) + "/cli/manifold");
  return RunCommand(args, kTimeout, {{"DOCKER_CONFIG", docker_config}});
}

void WriteIdentityToken(const std::string& docker_config, const std::string& registry,
                        const std::string& identity_token) {
  std::filesystem::create_directories(docker_config);
  nlohmann::json config = {{"auths", {{registry, {{"identitytoken", identity_token}}}}}};
  std::ofstream(docker_config + "/config.json") << config.dump(1, '\t');
}

class RegistryIdentityTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<test::TestCertificate> signer = test::MakeSelfSignedCertificate(tmp_.path(), "token");
    ASSERT_TRUE(signer.ok()) << signer.status().message();
    Status s = tokens_.Start(signer->cert_file, signer->key_file, kIssuer, kService,
                             {{"pusher", {"push-pw", {"pull", "push"}, kIdentityToken}}});
    ASSERT_TRUE(s.ok()) << s.message();
    test::RegistryServerOptions options;
    options.token_realm = tokens_.realm();
    options.token_service = kService;
    options.token_issuer = kIssuer;
    options.token_root_cert_file = signer->cert_file;
    s = registry_.Start(options);
    ASSERT_TRUE(s.ok()) << s.message();
  }

  // Credentials from config.json in docker_config_ only.
  RegistryOptions FromConfig() {
    RegistryOptions options;
    options.docker_config_dir = docker_config_;
    options.certs_dir = tmp_.path() + "/no-certs";
    return options;
  }

  TempDir tmp_;
  const std::string docker_config_ = tmp_.path() + "/docker";
  test::TokenServer tokens_;
  RegistryServer registry_;
};

TEST_F(RegistryIdentityTokenTest, PushesWithOnlyAnIdentityTokenInConfigJson) {
  WriteIdentityToken(docker_config_, registry_.host(), kIdentityToken);
  RegistryClient client(registry_.host(), FromConfig());
  TestImage amd64 = MakeTestImage({"linux", "amd64", ""}, "pushed with an identity token\n");
  TestImage arm64 = MakeTestImage({"linux", "arm64", ""}, "pushed with an identity token\n");
  Status s = test::PushTestImage(client, "team/idt", "amd64", amd64);
  ASSERT_TRUE(s.ok()) << s.message();
  s = test::PushTestImage(client, "team/idt", "arm64", arm64);
  ASSERT_TRUE(s.ok()) << s.message();
  // Every token came from the refresh grant (POST), none from a password (GET).
  EXPECT_GE(tokens_.refresh_grants(), 1);
  EXPECT_EQ(tokens_.refresh_grants(), tokens_.tokens_issued());

  // The CLI finds the same config.json and merges the two into an index.
  const int grants_before = tokens_.refresh_grants();
  const std::string repo = registry_.host() + "/team/idt";
  CommandResult created =
      Manifold({"imagetools", "create", "-t", repo + ":multi", repo + ":amd64", repo + ":arm64"},
               docker_config_);
  ASSERT_EQ(created.exit_code, 0) << created.output;
  EXPECT_GT(tokens_.refresh_grants(), grants_before);
  Result<FetchedManifest> index = client.GetManifest("team/idt", "multi");
  ASSERT_TRUE(index.ok()) << index.status().message();
  EXPECT_TRUE(Contains(created.output, index->digest)) << created.output;
  EXPECT_TRUE(Contains(index->bytes, amd64.manifest.digest));
  EXPECT_TRUE(Contains(index->bytes, arm64.manifest.digest));

  CommandResult inspected = Manifold({"imagetools", "inspect", repo + ":multi"}, docker_config_);
  ASSERT_EQ(inspected.exit_code, 0) << inspected.output;
  EXPECT_TRUE(Contains(inspected.output, "linux/arm64")) << inspected.output;
  for (const std::string& text : {created.output, inspected.output, registry_.LogTail(1 << 20)}) {
    EXPECT_FALSE(Contains(text, kIdentityToken)) << text;
  }
}

TEST_F(RegistryIdentityTokenTest, AWrongIdentityTokenIsAClearErrorWithoutTheSecret) {
  WriteIdentityToken(docker_config_, registry_.host(), kWrongIdentityToken);
  RegistryClient client(registry_.host(), FromConfig());
  TestImage image = MakeTestImage({"linux", "amd64", ""}, "never pushed\n");
  Status s = test::PushTestImage(client, "team/idt", "v1", image);
  ASSERT_FALSE(s.ok());
  const std::string& message = s.message();
  EXPECT_EQ(s.code(), Status::Code::kFailedPrecondition) << message;
  EXPECT_FALSE(s.retryable());
  EXPECT_TRUE(Contains(message, "registry " + registry_.host())) << message;
  EXPECT_TRUE(Contains(message, "HTTP 401")) << message;
  EXPECT_TRUE(Contains(message, "the identity token for " + registry_.host() + " in " +
                                    docker_config_ + "/config.json was refused"))
      << message;
  EXPECT_TRUE(Contains(message, "docker login " + registry_.host())) << message;
  EXPECT_FALSE(Contains(message, kWrongIdentityToken)) << message;
  EXPECT_EQ(tokens_.tokens_issued(), 0);

  CommandResult r =
      Manifold({"imagetools", "inspect", registry_.host() + "/team/idt:v1"}, docker_config_);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(Contains(r.output, "identity token for " + registry_.host())) << r.output;
  EXPECT_FALSE(Contains(r.output, kWrongIdentityToken)) << r.output;
  EXPECT_FALSE(Contains(registry_.LogTail(1 << 20), kWrongIdentityToken));
}

// The first IPv4 address of this machine that is up and not loopback, or "".
std::string NonLoopbackAddress() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "";
  std::string found;
  for (ifaddrs* i = list; i != nullptr && found.empty(); i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET ||
        (i->ifa_flags & IFF_UP) == 0 || (i->ifa_flags & IFF_LOOPBACK) != 0) {
      continue;
    }
    char text[INET_ADDRSTRLEN] = {0};
    const auto* address = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
    if (inet_ntop(AF_INET, &address->sin_addr, text, sizeof text) != nullptr) found = text;
  }
  freeifaddrs(list);
  return found;
}

// A plain-HTTP registry on an address that is not loopback: what docker, and manifold,
// reach over HTTPS unless it is listed insecure.
class RegistryInsecureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string address = NonLoopbackAddress();
    if (address.empty()) GTEST_SKIP() << "this machine has no non-loopback IPv4 address to bind";
    test::RegistryServerOptions server_options;
    server_options.bind_address = address;
    Status started = registry_.Start(server_options);
    ASSERT_TRUE(started.ok()) << started.message();
    options_.docker_config_dir = tmp_.path();
    options_.certs_dir = tmp_.path() + "/certs.d";
  }

  TempDir tmp_;
  RegistryServer registry_;
  RegistryOptions options_;  // the registry not listed insecure
};

TEST_F(RegistryInsecureTest, APlainHttpRegistryIsRefusedUnlessListedInsecure) {
  TestImage image = MakeTestImage({"linux", "amd64", ""}, "over plain HTTP\n");

  // Not listed: HTTPS, and the error says what answered and what to do; not retried.
  {
    RegistryClient client(registry_.host(), options_);
    EXPECT_EQ(client.base_url(), "https://" + registry_.host());
    PushStats stats;
    Status s = client.PushBlob("team/plain", image.config.digest, image.config_bytes, &stats);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), Status::Code::kFailedPrecondition) << s.message();
    EXPECT_EQ(stats.requests_retried, 0) << s.message();
    EXPECT_EQ(stats.uploads_restarted, 0);
    EXPECT_TRUE(Contains(s.message(), "registry " + registry_.host())) << s.message();
    EXPECT_TRUE(Contains(s.message(), "answered without TLS (plain HTTP?)")) << s.message();
    EXPECT_TRUE(Contains(s.message(), "--insecure-registry " + registry_.host())) << s.message();
  }

  // Listed: plain HTTP, and the push works.
  options_.insecure_registries = {"other.example:5000", registry_.host()};
  RegistryClient client(registry_.host(), options_);
  EXPECT_EQ(client.base_url(), "http://" + registry_.host());
  Status pushed = test::PushTestImage(client, "team/plain", "v1", image);
  ASSERT_TRUE(pushed.ok()) << pushed.message();
  CommandResult raw = RunCommand({"skopeo", "inspect", "--raw", "--tls-verify=false",
                                  "docker://" + registry_.host() + "/team/plain:v1"},
                                 kTimeout);
  ASSERT_EQ(raw.exit_code, 0) << raw.output;
  EXPECT_EQ(Sha256Digest(raw.output), image.manifest.digest);

  // The CLI: refused without the flag, works with it.
  const std::string ref = registry_.host() + "/team/plain:v1";
  CommandResult refused = Manifold({"imagetools", "inspect", ref}, tmp_.path());
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_TRUE(Contains(refused.output, "--insecure-registry " + registry_.host()))
      << refused.output;
  CommandResult listed = Manifold(
      {"imagetools", "inspect", "--insecure-registry", registry_.host(), ref}, tmp_.path());
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_TRUE(Contains(listed.output, image.manifest.digest)) << listed.output;

  // The coordinator's merge (what its --insecure-registry sets): refused, then pushed.
  BuildRecord build;
  build.id = 1;
  build.state = "merging";
  build.spec.tags = {registry_.host() + "/team/plain:multi"};
  JobRecord job;
  job.id = 1;
  job.build_id = build.id;
  job.platform = image.platform;
  job.state = "succeeded";
  job.manifest = {image.manifest.media_type, image.manifest.digest,
                  static_cast<uint64_t>(image.manifest.size)};
  build.jobs.push_back(job);
  Result<PushedIndex> unlisted = Merger().MergeAndPushIndex(build);
  ASSERT_FALSE(unlisted.ok());
  EXPECT_TRUE(Contains(unlisted.status().message(), "--insecure-registry " + registry_.host()))
      << unlisted.status().message();
  Result<PushedIndex> merged = Merger(options_).MergeAndPushIndex(build);
  ASSERT_TRUE(merged.ok()) << merged.status().message();
  Result<FetchedManifest> index = client.GetManifest("team/plain", "multi");
  ASSERT_TRUE(index.ok()) << index.status().message();
  EXPECT_EQ(index->digest, merged->digest);
}

// A registry that requires mutual TLS, its CA and the client certificate in certs.d.
class RegistryClientCertificateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<test::TestCertificate> ca =
        test::StartTlsRegistry(&registry_, tmp_.path(), {}, /*require_client_certificate=*/true);
    ASSERT_TRUE(ca.ok()) << ca.status().message();
    ca_ = *ca;
    host_certs_ = tmp_.path() + "/certs.d/" + registry_.host();
    std::filesystem::create_directories(host_certs_);
    std::filesystem::copy_file(ca_.cert_file, host_certs_ + "/ca.crt");
  }

  RegistryOptions Options() {
    RegistryOptions options;
    options.docker_config_dir = tmp_.path();
    options.certs_dir = tmp_.path() + "/certs.d";
    return options;
  }

  TempDir tmp_;
  test::TestCertificate ca_;
  RegistryServer registry_;
  std::string host_certs_;
};

TEST_F(RegistryClientCertificateTest, PushesWithTheClientCertificateFromCertsD) {
  TestImage image = MakeTestImage({"linux", "amd64", ""}, "over mutual TLS\n");
  // Without a client certificate the registry ends the handshake: a clear error, at once.
  {
    RegistryClient client(registry_.host(), Options());
    EXPECT_EQ(client.base_url(), "https://" + registry_.host());
    PushStats stats;
    Status s = client.PushBlob("team/mtls", image.config.digest, image.config_bytes, &stats);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), Status::Code::kFailedPrecondition) << s.message();
    EXPECT_EQ(stats.requests_retried, 0) << s.message();
    EXPECT_TRUE(Contains(s.message(), "registry " + registry_.host())) << s.message();
    EXPECT_TRUE(Contains(s.message(), "requires a client certificate (mutual TLS)")) << s.message();
    EXPECT_TRUE(Contains(s.message(), host_certs_ + "/ as client.cert and client.key"))
        << s.message();
  }

  // A certificate from a CA the registry does not trust for clients is refused, by name.
  const std::string other_dir = tmp_.path() + "/other";
  std::filesystem::create_directories(other_dir);
  Result<test::TestCertificate> other_ca = test::MakeTestCa(other_dir);
  ASSERT_TRUE(other_ca.ok()) << other_ca.status().message();
  Result<test::TestCertificate> stranger =
      test::MakeClientCertificate(*other_ca, other_dir, "client");
  ASSERT_TRUE(stranger.ok()) << stranger.status().message();
  std::filesystem::copy_file(stranger->cert_file, host_certs_ + "/client.cert");
  std::filesystem::copy_file(stranger->key_file, host_certs_ + "/client.key");
  {
    RegistryClient client(registry_.host(), Options());
    Status s = client.PushBlob("team/mtls", image.config.digest, image.config_bytes);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), Status::Code::kFailedPrecondition) << s.message();
    EXPECT_TRUE(
        Contains(s.message(), "refused the client certificate " + host_certs_ + "/client.cert"))
        << s.message();
  }

  // The right one: the push works, and skopeo with the same certs.d reads it back.
  Result<test::TestCertificate> client_cert =
      test::MakeClientCertificate(ca_, tmp_.path(), "client");
  ASSERT_TRUE(client_cert.ok()) << client_cert.status().message();
  std::filesystem::copy_file(client_cert->cert_file, host_certs_ + "/client.cert",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(client_cert->key_file, host_certs_ + "/client.key",
                             std::filesystem::copy_options::overwrite_existing);
  RegistryClient client(registry_.host(), Options());
  Status pushed = test::PushTestImage(client, "team/mtls", "v1", image);
  ASSERT_TRUE(pushed.ok()) << pushed.message();
  CommandResult raw = RunCommand({"skopeo", "inspect", "--raw", "--cert-dir", host_certs_,
                                  "docker://" + registry_.host() + "/team/mtls:v1"},
                                 kTimeout);
  ASSERT_EQ(raw.exit_code, 0) << raw.output;
  EXPECT_EQ(Sha256Digest(raw.output), image.manifest.digest);
}

TEST_F(RegistryClientCertificateTest, ACertificateWithoutItsKeyIsAClearError) {
  Result<test::TestCertificate> client_cert =
      test::MakeClientCertificate(ca_, tmp_.path(), "client");
  ASSERT_TRUE(client_cert.ok()) << client_cert.status().message();
  std::filesystem::copy_file(client_cert->cert_file, host_certs_ + "/client.cert");
  RegistryClient client(registry_.host(), Options());
  TestImage image = MakeTestImage({"linux", "amd64", ""}, "no key\n");
  Status s = test::PushTestImage(client, "team/mtls", "v1", image);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kFailedPrecondition) << s.message();
  EXPECT_TRUE(Contains(s.message(), "registry " + registry_.host())) << s.message();
  EXPECT_TRUE(Contains(s.message(), "the client certificate " + host_certs_ +
                                        "/client.cert has no key " + host_certs_ +
                                        "/client.key beside it"))
      << s.message();
}

}  // namespace
}  // namespace manifold

namespace manifold {
namespace {

// Collects what a job says.
struct RecordedEvents : JobEvents {
  void Phase(const JobRef&, JobPhase) override {}
  void Output(const JobRef&, std::string_view text) override { output += text; }
  std::string output;
};

// The agent's push (what its --insecure-registry sets): a synthetic build pushed by the
// job runner, its context served by the same registry as a blob.
TEST_F(RegistryInsecureTest, AnAgentPushesToARegistryOnlyWhenListedInsecure) {
  RegistryOptions listed = options_;
  listed.insecure_registries = {registry_.host()};
  RegistryClient client(registry_.host(), listed);
  std::filesystem::create_directories(tmp_.path() + "/context");
  std::ofstream(tmp_.path() + "/context/hello.txt") << "hello\n";
  std::string context;
  ASSERT_TRUE(WriteTarFromDirectory(tmp_.path() + "/context", nullptr, &context).ok());
  const std::string context_digest = Sha256Digest(context);
  ASSERT_TRUE(client.PushBlob("team/context", context_digest, context).ok());

  AssignMsg assign;
  assign.job = {1, 1};
  assign.build_id = 1;
  assign.platform = {"linux", "amd64", ""};
  assign.context_digest = context_digest;
  assign.context_url = client.base_url() + "/v2/team/context/blobs/" + context_digest;
  assign.dockerfile = "FROM scratch\n";
  assign.repositories = {registry_.host() + "/team/agent"};
  SyntheticBuilder builder(SyntheticBuildOptions{});
  JobRunnerOptions runner_options;
  runner_options.work_dir = tmp_.path() + "/work";
  runner_options.registry_options = options_;

  RecordedEvents events;
  Result<ImageDescriptor> refused = JobRunner(builder, runner_options).Run(assign, events, nullptr);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(Contains(refused.status().message(), "--insecure-registry " + registry_.host()))
      << refused.status().message();

  runner_options.registry_options = listed;
  Result<ImageDescriptor> pushed = JobRunner(builder, runner_options).Run(assign, events, nullptr);
  ASSERT_TRUE(pushed.ok()) << pushed.status().message() << "\n" << events.output;
  Result<FetchedManifest> manifest = client.GetManifest("team/agent", pushed->digest);
  ASSERT_TRUE(manifest.ok()) << manifest.status().message();
  EXPECT_EQ(manifest->digest, pushed->digest);
}

}  // namespace
}  // namespace manifold
