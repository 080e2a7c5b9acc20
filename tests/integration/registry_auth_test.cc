// RegistryClient against registries that require what real ones do: TLS with a private
// CA from a certs.d directory, htpasswd Basic auth, Docker token (Bearer) auth with
// scopes, and uploads that must survive a registry restart. Read back with skopeo.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cli/login.h"
#include "common/digest.h"
#include "common/docker_config.h"
#include "common/oci.h"
#include "common/registry.h"
#include "tests/support/push_image.h"
#include "tests/support/registry_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_image.h"
#include "tests/support/tls_certs.h"
#include "tests/support/token_server.h"

namespace manifold {
namespace {

using test::MakeTestImage;
using test::RegistryServer;
using test::RunCommand;
using test::TempDir;
using test::TestImage;

// bcrypt of "s3cret" for user "ci".
constexpr char kHtpasswd[] = "ci:$2b$04$WYwNiYtOGMLdzSYyQEeFMuNU5x5XMn5zDH2A7xKy.JtiZRwWPE93C\n";
constexpr auto kSkopeoTimeout = std::chrono::seconds(60);

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Pushes two single-platform images and an index over them under `tag`; returns the
// index digest ("" after a test failure).
std::string PushTwoPlatformImage(const RegistryClient& client, const std::string& repo,
                                 const std::string& tag) {
  std::vector<IndexChild> children;
  for (const char* arch : {"amd64", "arm64"}) {
    TestImage image = MakeTestImage({"linux", arch, ""}, std::string(arch) + " over auth\n");
    Status s = client.PushBlob(repo, image.config.digest, image.config_bytes);
    EXPECT_TRUE(s.ok()) << s.message();
    s = client.PushBlob(repo, image.layers[0].digest, image.layer_bytes[0]);
    EXPECT_TRUE(s.ok()) << s.message();
    Result<std::string> digest = client.PutManifest(
        repo, image.manifest.digest, image.manifest.media_type, image.manifest_bytes);
    EXPECT_TRUE(digest.ok()) << digest.status().message();
    if (!s.ok() || !digest.ok()) return "";
    children.push_back({image.manifest, image.platform});
  }
  std::string media_type;
  Result<std::string> index = BuildIndex(children, {}, &media_type);
  EXPECT_TRUE(index.ok()) << index.status().message();
  if (!index.ok()) return "";
  Result<std::string> digest = client.PutManifest(repo, tag, media_type, *index);
  EXPECT_TRUE(digest.ok()) << digest.status().message();
  return digest.ok() ? *digest : "";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// docker-registry over TLS with a certificate from a test CA, and htpasswd Basic auth.
class RegistryTlsAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test::RegistryServerOptions options;
    options.htpasswd = kHtpasswd;
    Result<test::TestCertificate> ca = test::StartTlsRegistry(&registry_, tmp_.path(), options);
    ASSERT_TRUE(ca.ok()) << ca.status().message();
    ca_ = *ca;
  }

  TempDir tmp_;
  test::TestCertificate ca_;
  RegistryServer registry_;
  const std::string certs_dir_ = tmp_.path() + "/certs.d";
  const std::string docker_config_ = tmp_.path() + "/docker";
};

TEST_F(RegistryTlsAuthTest, LoginAndPushOverTlsWithACertsDirAndBasicAuth) {
  RegistryOptions registry_options;
  registry_options.certs_dir = certs_dir_;
  registry_options.docker_config_dir = docker_config_;

  // Without the CA the registry's certificate is not trusted, and the error says where
  // the CA goes.
  {
    RegistryClient untrusted(registry_.host(), registry_options);
    EXPECT_EQ(untrusted.base_url(), "http://" + registry_.host());  // loopback, no certs.d
    RegistryOptions tls = registry_options;
    tls.plain_http = false;
    RegistryClient client(registry_.host(), tls);
    Status s = client.CheckAccess();
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), Status::Code::kFailedPrecondition) << s.message();
    EXPECT_TRUE(Contains(s.message(), certs_dir_ + "/" + registry_.host() + "/ca.crt"))
        << s.message();
  }
  const std::string host_certs = certs_dir_ + "/" + registry_.host();
  std::filesystem::create_directories(host_certs);
  std::filesystem::copy_file(ca_.cert_file, host_certs + "/ca.crt");

  // Anonymous: refused, with what to do.
  {
    RegistryClient client(registry_.host(), registry_options);
    EXPECT_EQ(client.base_url(), "https://" + registry_.host());  // certs.d means TLS
    Result<bool> exists = client.BlobExists("team/app", Sha256Digest("x"));
    ASSERT_FALSE(exists.ok());
    EXPECT_TRUE(Contains(exists.status().message(), "manifold login " + registry_.host()))
        << exists.status().message();
  }

  // A wrong password is refused and stores nothing.
  LoginOptions login;
  login.registry = registry_.host();
  login.username = "ci";
  login.config_dir = docker_config_;
  login.registry_options = registry_options;
  std::istringstream wrong("not-the-password\n");
  std::ostringstream out;
  std::ostringstream err;
  EXPECT_EQ(RunLogin(login, &wrong, &out, &err), 1);
  EXPECT_TRUE(Contains(err.str(), "refused the credentials")) << err.str();
  EXPECT_FALSE(Contains(err.str(), "not-the-password")) << err.str();
  EXPECT_FALSE(std::filesystem::exists(docker_config_ + "/config.json"));

  // The right one is stored as docker stores it, readable by the owner only.
  std::istringstream right("s3cret\n");
  ASSERT_EQ(RunLogin(login, &right, &out, &err), 0) << err.str();
  EXPECT_TRUE(Contains(out.str(), "Login Succeeded"));
  struct stat st;
  ASSERT_EQ(stat((docker_config_ + "/config.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  nlohmann::json config = nlohmann::json::parse(ReadFile(docker_config_ + "/config.json"));
  EXPECT_EQ(config["auths"][registry_.host()]["auth"], Base64Encode("ci:s3cret"));

  // A client that finds both the CA and the credentials on its own pushes an index...
  RegistryClient client(registry_.host(), registry_options);
  const std::string index_digest = PushTwoPlatformImage(client, "team/tls", "multi");
  ASSERT_FALSE(index_digest.empty());

  // ...that skopeo, given the same CA and credentials, reads back.
  test::CommandResult raw =
      RunCommand({"skopeo", "inspect", "--raw", "--cert-dir", host_certs, "--creds", "ci:s3cret",
                  "docker://" + registry_.host() + "/team/tls:multi"},
                 kSkopeoTimeout);
  ASSERT_EQ(raw.exit_code, 0) << raw.output;
  EXPECT_EQ(Sha256Digest(raw.output), index_digest);
  test::CommandResult arm =
      RunCommand({"skopeo", "inspect", "--cert-dir", host_certs, "--creds", "ci:s3cret",
                  "--override-arch", "arm64", "docker://" + registry_.host() + "/team/tls:multi"},
                 kSkopeoTimeout);
  ASSERT_EQ(arm.exit_code, 0) << arm.output;
  EXPECT_TRUE(Contains(arm.output, "\"Architecture\": \"arm64\"")) << arm.output;

  // Credentials in config.json that are wrong give a clear error on push too.
  ASSERT_TRUE(StoreRegistryCredentials(docker_config_, registry_.host(), "ci", "stale").ok());
  RegistryClient stale(registry_.host(), registry_options);
  Status s = stale.PushBlob("team/tls", Sha256Digest("y"), "y");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kFailedPrecondition) << s.message();
  EXPECT_TRUE(Contains(s.message(), "refused the credentials of the user \"ci\"")) << s.message();
  EXPECT_FALSE(Contains(s.message(), "stale")) << s.message();
}

// The CLI is linked with its own static libcurl (ops/curl.sh), not the one the library tests
// above use: the same TLS, certs.d and Basic auth, through the binary people run.
TEST_F(RegistryTlsAuthTest, TheCliLogsInMergesAndInspectsOverTlsWithACertsDir) {
  std::filesystem::create_directories(tmp_.path() + "/other-ca");
  Result<test::TestCertificate> other_ca = test::MakeTestCa(tmp_.path() + "/other-ca");
  ASSERT_TRUE(other_ca.ok()) << other_ca.status().message();
  const std::string host_certs = certs_dir_ + "/" + registry_.host();
  const std::string repo = registry_.host() + "/team/cli";
  const std::string cli = std::string(MANIFOLD_BINARY_DIR) + "/cli/manifold";
  auto manifold = [&](std::vector<std::string> args, const std::string& password = "") {
    // `manifold login --password-stdin` reads the password from a pipe, as in CI.
    std::vector<std::string> argv = {"sh", "-c", "printf '%s\\n' \"$0\" | \"$@\"", password, cli};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, kSkopeoTimeout, {{"DOCKER_CONFIG", docker_config_}});
  };
  std::filesystem::create_directories(host_certs);

  // A CA that did not sign the registry's certificate is not trusted: verification is on.
  std::filesystem::copy_file(other_ca->cert_file, host_certs + "/ca.crt");
  test::CommandResult refused = manifold(
      {"login", registry_.host(), "-u", "ci", "--password-stdin", "--certs-dir", certs_dir_},
      "s3cret");
  EXPECT_NE(refused.exit_code, 0) << refused.output;
  EXPECT_TRUE(Contains(refused.output, host_certs + "/ca.crt")) << refused.output;
  EXPECT_FALSE(std::filesystem::exists(docker_config_ + "/config.json"));

  std::filesystem::copy_file(ca_.cert_file, host_certs + "/ca.crt",
                             std::filesystem::copy_options::overwrite_existing);
  test::CommandResult wrong = manifold(
      {"login", registry_.host(), "-u", "ci", "--password-stdin", "--certs-dir", certs_dir_},
      "not-the-password");
  EXPECT_NE(wrong.exit_code, 0) << wrong.output;
  EXPECT_TRUE(Contains(wrong.output, "refused the credentials")) << wrong.output;
  EXPECT_FALSE(Contains(wrong.output, "not-the-password")) << wrong.output;
  test::CommandResult login = manifold(
      {"login", registry_.host(), "-u", "ci", "--password-stdin", "--certs-dir", certs_dir_},
      "s3cret");
  ASSERT_EQ(login.exit_code, 0) << login.output;
  EXPECT_TRUE(Contains(login.output, "Login Succeeded")) << login.output;

  // Two images pushed by the library, merged by the CLI with the stored credentials.
  RegistryOptions registry_options;
  registry_options.certs_dir = certs_dir_;
  registry_options.docker_config_dir = docker_config_;
  RegistryClient client(registry_.host(), registry_options);
  for (const char* arch : {"amd64", "arm64"}) {
    TestImage image = MakeTestImage({"linux", arch, ""}, std::string(arch) + " for the CLI\n");
    Status pushed = test::PushTestImage(client, "team/cli", arch, image);
    ASSERT_TRUE(pushed.ok()) << pushed.message();
  }
  test::CommandResult created = manifold({"imagetools", "create", "--certs-dir", certs_dir_, "-t",
                                          repo + ":multi", repo + ":amd64", repo + ":arm64"});
  ASSERT_EQ(created.exit_code, 0) << created.output;
  test::CommandResult inspected =
      manifold({"imagetools", "inspect", "--certs-dir", certs_dir_, repo + ":multi"});
  ASSERT_EQ(inspected.exit_code, 0) << inspected.output;
  EXPECT_TRUE(Contains(inspected.output, "linux/arm64")) << inspected.output;

  // skopeo, given the same CA and credentials, reads back the index the CLI printed.
  test::CommandResult raw = RunCommand({"skopeo", "inspect", "--raw", "--cert-dir", host_certs,
                                        "--creds", "ci:s3cret", "docker://" + repo + ":multi"},
                                       kSkopeoTimeout);
  ASSERT_EQ(raw.exit_code, 0) << raw.output;
  EXPECT_TRUE(Contains(created.output, Sha256Digest(raw.output))) << created.output;
}

class RegistryTokenAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<test::TestCertificate> signer = test::MakeSelfSignedCertificate(tmp_.path(), "token");
    ASSERT_TRUE(signer.ok()) << signer.status().message();
    Status s = tokens_.Start(
        signer->cert_file, signer->key_file, "manifold-test-issuer", "manifold-test-registry",
        {{"pusher", {"push-pw", {"pull", "push"}, ""}}, {"reader", {"read-pw", {"pull"}, ""}}});
    ASSERT_TRUE(s.ok()) << s.message();
    test::RegistryServerOptions options;
    options.token_realm = tokens_.realm();
    options.token_service = "manifold-test-registry";
    options.token_issuer = "manifold-test-issuer";
    options.token_root_cert_file = signer->cert_file;
    s = registry_.Start(options);
    ASSERT_TRUE(s.ok()) << s.message();
  }

  RegistryOptions As(const std::string& user, const std::string& password) {
    RegistryOptions options;
    options.credentials = RegistryCredentials{user, password, ""};
    options.certs_dir = tmp_.path() + "/no-certs";
    return options;
  }

  TempDir tmp_;
  test::TokenServer tokens_;
  RegistryServer registry_;
};

TEST_F(RegistryTokenAuthTest, PushesWithAPushTokenAndCachesIt) {
  RegistryClient client(registry_.host(), As("pusher", "push-pw"));
  const std::string digest = PushTwoPlatformImage(client, "team/token", "v1");
  ASSERT_FALSE(digest.empty());
  // One token for pull (HEAD/GET scopes) at most and one for pull,push, reused for every
  // request of the push rather than fetched per request.
  EXPECT_GE(tokens_.tokens_issued(), 1);
  EXPECT_LE(tokens_.tokens_issued(), 2);

  RegistryClient reader(registry_.host(), As("reader", "read-pw"));
  Result<FetchedManifest> got = reader.GetManifest("team/token", "v1");
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->digest, digest);
}

TEST_F(RegistryTokenAuthTest, ATokenWithoutPushScopeIsAClearError) {
  RegistryClient reader(registry_.host(), As("reader", "read-pw"));
  Status s = reader.PushBlob("team/token", Sha256Digest("z"), "z");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kFailedPrecondition) << s.message();
  EXPECT_FALSE(s.retryable());
  EXPECT_TRUE(Contains(s.message(), "registry " + registry_.host())) << s.message();
  EXPECT_TRUE(Contains(s.message(), "push blob")) << s.message();
  EXPECT_TRUE(Contains(s.message(), "does not grant repository:team/token:pull,push"))
      << s.message();
  EXPECT_TRUE(Contains(s.message(), "\"reader\"")) << s.message();
}

// A mount needs push on the target and pull on the source: one token grants both.
TEST_F(RegistryTokenAuthTest, MountsIntoAnotherRepositoryWithOneToken) {
  RegistryClient client(registry_.host(), As("pusher", "push-pw"));
  TestImage image = MakeTestImage({"linux", "amd64", ""}, "mounted with a token\n");
  for (const std::string* bytes : {&image.config_bytes, &image.layer_bytes[0]}) {
    Status s = client.PushBlob("team/source", Sha256Digest(*bytes), *bytes);
    ASSERT_TRUE(s.ok()) << s.message();
  }
  Result<std::string> put =
      client.PutManifest("team/source", "v1", image.manifest.media_type, image.manifest_bytes);
  ASSERT_TRUE(put.ok()) << put.status().message();
  const int tokens_before = tokens_.tokens_issued();
  PushStats stats;
  Status copied = client.CopyImage("team/source", "team/target", image.manifest.digest, &stats);
  ASSERT_TRUE(copied.ok()) << copied.message();
  EXPECT_EQ(stats.blobs_mounted, 2);
  EXPECT_EQ(stats.blobs_pushed, 0);
  // Pull on team/target (HEADs), pull on team/source (GET the manifest), and one token for
  // the mounts and the manifest PUT, reused for both blobs.
  EXPECT_LE(tokens_.tokens_issued() - tokens_before, 4);
  RegistryClient reader(registry_.host(), As("reader", "read-pw"));
  Result<FetchedManifest> got = reader.GetManifest("team/target", image.manifest.digest);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->bytes, image.manifest_bytes);
}

TEST_F(RegistryTokenAuthTest, AWrongPasswordIsAClearError) {
  RegistryClient client(registry_.host(), As("pusher", "wrong-pw"));
  Result<FetchedManifest> got = client.GetManifest("team/token", "v1");
  ASSERT_FALSE(got.ok());
  const std::string& message = got.status().message();
  EXPECT_EQ(got.status().code(), Status::Code::kFailedPrecondition) << message;
  EXPECT_TRUE(Contains(message, tokens_.realm())) << message;
  EXPECT_TRUE(Contains(message, "HTTP 401")) << message;
  EXPECT_TRUE(Contains(message, "wrong user name or password")) << message;
  EXPECT_FALSE(Contains(message, "wrong-pw")) << message;
}

// A 64 MiB layer in 4 MiB chunks; the registry goes down after the 4th chunk and comes
// back a second later. The upload continues from the registry's Range and completes.
TEST(RegistryChunkedUploadTest, ResumesALargeUploadAcrossARegistryRestart) {
  RegistryServer registry;
  Status started = registry.Start();
  ASSERT_TRUE(started.ok()) << started.message();
  TempDir tmp;
  const std::string path = tmp.path() + "/layer.bin";
  {
    std::ofstream out(path, std::ios::binary);
    std::string block(1 << 20, '\0');
    for (int mb = 0; mb < 64; ++mb) {
      for (size_t i = 0; i < block.size(); ++i) {
        block[i] = static_cast<char>((i * 2654435761u + mb * 40503u) >> 13);
      }
      out << block;
    }
  }
  Result<std::string> digest = Sha256FileDigest(path);
  ASSERT_TRUE(digest.ok());

  std::thread restarter;
  Status restarted;
  bool stopped = false;
  RegistryOptions options;
  options.certs_dir = tmp.path() + "/no-certs";
  options.docker_config_dir = tmp.path() + "/no-docker";
  options.chunked_threshold_bytes = 8 << 20;
  options.chunk_bytes = 4 << 20;
  options.max_attempts = 8;
  std::vector<int64_t> progress;
  options.on_upload_progress = [&](std::string_view, int64_t done, int64_t) {
    progress.push_back(done);
    if (!stopped && done >= (16 << 20)) {
      stopped = true;
      registry.Stop();
      restarter = std::thread([&] {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        restarted = registry.Restart();
      });
    }
  };
  RegistryClient client(registry.host(), options);
  PushStats stats;
  Status s = client.PushBlobFromFile("team/big", *digest, int64_t{64} << 20, path, &stats);
  if (restarter.joinable()) restarter.join();
  ASSERT_TRUE(restarted.ok()) << restarted.message();
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_TRUE(stopped);
  EXPECT_GE(stats.uploads_resumed, 1);
  EXPECT_EQ(stats.uploads_restarted, 0);  // the session survived; nothing was sent twice
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), int64_t{64} << 20);
  EXPECT_GE(progress.size(), 16u);  // it really went in chunks

  // The registry has the blob under its digest, and its bytes hash to it.
  Result<std::string> fetched = client.GetBlob("team/big", *digest);
  ASSERT_TRUE(fetched.ok()) << fetched.status().message();
  EXPECT_EQ(Sha256Digest(*fetched), *digest);
}

}  // namespace
}  // namespace manifold
