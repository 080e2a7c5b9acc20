// JobRunner against a real registry: the coordinator lists a job's image in the index
// under the job's platform on the agent's word, so the agent checks the platform its
// image config names before it pushes anything; a context fetch that fails says where
// from without the grant that authorises it (the error is stored with the job), and one
// over TLS trusts the agent's --ca-file and says to give it when the certificate fails.
#include "agent/job_runner.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "agent/synthetic_builder.h"
#include "common/digest.h"
#include "common/http_client.h"
#include "common/redact.h"
#include "common/registry.h"
#include "common/tar.h"
#include "tests/support/ports.h"
#include "tests/support/registry_server.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tls_certs.h"

namespace manifold {
namespace {

JobRunnerOptions OptionsIn(const std::string& work_dir) {
  JobRunnerOptions options;
  options.work_dir = work_dir;
  return options;
}

const Platform kAmd64{"linux", "amd64", ""};
const Platform kArm64{"linux", "arm64", ""};

// A backend whose image is for another platform than the job's, as a misconfigured
// builder or a base image that lacks the platform gives: the synthetic backend, asked for
// `platform` whatever the job says.
class OtherPlatformBuilder : public Builder {
 public:
  explicit OtherPlatformBuilder(Platform platform)
      : platform_(std::move(platform)), synthetic_(SyntheticBuildOptions{}) {}
  std::string Name() const override { return "other-platform"; }
  Status Build(const BuildRequest& request,
               const std::function<void(std::string_view output)>& on_output,
               const std::atomic<bool>* cancel) override {
    BuildRequest other = request;
    other.platform = platform_;
    return synthetic_.Build(other, on_output, cancel);
  }

 private:
  Platform platform_;
  SyntheticBuilder synthetic_;
};

// The synthetic backend, keeping the last request it was given.
class RecordingBuilder : public Builder {
 public:
  std::string Name() const override { return "recording"; }
  Status Build(const BuildRequest& request,
               const std::function<void(std::string_view output)>& on_output,
               const std::atomic<bool>* cancel) override {
    last = request;
    return synthetic_.Build(request, on_output, cancel);
  }
  BuildRequest last;

 private:
  SyntheticBuilder synthetic_{SyntheticBuildOptions{}};
};

class IgnoredEvents : public JobEvents {
 public:
  void Phase(const JobRef&, JobPhase) override {}
  void Output(const JobRef&, std::string_view) override {}
};

class JobRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status started = registry_.Start();
    ASSERT_TRUE(started.ok()) << started.message();
    // The build context, served to the runner by the registry as a blob.
    std::string context_dir = dir_.path() + "/context";
    std::filesystem::create_directories(context_dir);
    std::ofstream(context_dir + "/Dockerfile") << "FROM scratch\n";
    std::string archive;
    Status tar = WriteTarFromDirectory(context_dir, nullptr, &archive);
    ASSERT_TRUE(tar.ok()) << tar.message();
    assign_.context_digest = Sha256Digest(archive);
    Status pushed =
        RegistryClient(registry_.host()).PushBlob("contexts", assign_.context_digest, archive);
    ASSERT_TRUE(pushed.ok()) << pushed.message();
    assign_.job = {1, 1};
    assign_.build_id = 1;
    assign_.platform = kAmd64;
    assign_.context_url =
        "http://" + registry_.host() + "/v2/contexts/blobs/" + assign_.context_digest;
    assign_.dockerfile = "FROM scratch\n";
    assign_.repositories = {registry_.host() + "/app"};
  }

  // Whether the repository holds anything (a blob pushed makes it exist).
  bool RepositoryExists(const std::string& repository) {
    HttpRequest request;
    request.url = "http://" + registry_.host() + "/v2/" + repository + "/tags/list";
    Result<HttpResponse> response = HttpClient().Send(request);
    return response.ok() && response->status == 200;
  }

  test::RegistryServer registry_;
  test::TempDir dir_{"job-runner"};
  AssignMsg assign_;
  IgnoredEvents events_;
};

TEST_F(JobRunnerTest, AnImageForAnotherPlatformFailsTheJobBeforeAnythingIsPushed) {
  OtherPlatformBuilder wrong(kArm64);
  Result<ImageDescriptor> result =
      JobRunner(wrong, OptionsIn(dir_.path())).Run(assign_, events_, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_FALSE(result.status().retryable());
  EXPECT_NE(result.status().message().find(
                "other-platform built an image for linux/arm64 (so says its config) for a "
                "linux/amd64 job"),
            std::string::npos)
      << result.status().message();
  EXPECT_FALSE(RepositoryExists("app")) << "something was pushed";

  // The same job with a backend that builds what it is asked is pushed as usual.
  SyntheticBuilder right(SyntheticBuildOptions{});
  Result<ImageDescriptor> pushed =
      JobRunner(right, OptionsIn(dir_.path())).Run(assign_, events_, nullptr);
  ASSERT_TRUE(pushed.ok()) << pushed.status().message();
  Result<bool> there = RegistryClient(registry_.host()).ManifestExists("app", pushed->digest);
  ASSERT_TRUE(there.ok()) << there.status().message();
  EXPECT_TRUE(*there);
}

TEST_F(JobRunnerTest, AJobsLimitsAndNetworkAreResolvedAgainstTheAgentsPolicyBeforeItsBuild) {
  JobRunnerOptions options = OptionsIn(dir_.path());
  options.policy.defaults.pids = 100;
  options.policy.defaults.memory_bytes = 32 << 20;
  options.policy.maximums.memory_bytes = 128 << 20;
  RecordingBuilder builder;

  AssignMsg over = assign_;
  over.limits.memory_bytes = 256 << 20;
  Result<ImageDescriptor> refused = JobRunner(builder, options).Run(over, events_, nullptr);
  ASSERT_FALSE(refused.ok());
  EXPECT_FALSE(refused.status().retryable());
  EXPECT_EQ(refused.status().message(),
            "the build asks for 256 MiB of memory (--job-memory), over this agent's maximum of "
            "128 MiB; ask for at most that, or raise the agent's --max-job-memory");

  AssignMsg host = assign_;
  host.network = "host";
  host.entitlements = {"network.host"};
  Result<ImageDescriptor> no_host = JobRunner(builder, options).Run(host, events_, nullptr);
  ASSERT_FALSE(no_host.ok());
  EXPECT_FALSE(no_host.status().retryable());
  EXPECT_NE(no_host.status().message().find("--allow-insecure-entitlement network.host"),
            std::string::npos)
      << no_host.status().message();
  EXPECT_FALSE(RepositoryExists("app")) << "a refused job built something";

  AssignMsg within = assign_;
  within.network = "none";
  within.limits.memory_bytes = 128 << 20;
  Result<ImageDescriptor> built = JobRunner(builder, options).Run(within, events_, nullptr);
  ASSERT_TRUE(built.ok()) << built.status().message();
  EXPECT_EQ(builder.last.limits, (JobLimits{.memory_bytes = 128 << 20, .pids = 100}));
  EXPECT_EQ(builder.last.network, "none");
  EXPECT_EQ(builder.last.cgroup_parent, "") << "no cgroups: none given to the runner";

  options.policy.allowed_entitlements = {"network.host"};
  Result<ImageDescriptor> allowed = JobRunner(builder, options).Run(host, events_, nullptr);
  ASSERT_TRUE(allowed.ok()) << allowed.status().message();
  EXPECT_EQ(builder.last.network, "host");
}

TEST_F(JobRunnerTest, AFailedContextFetchNamesTheUrlWithoutItsCredentials) {
  const std::string secret = "0123456789abcdef0123456789abcdef";
  const std::string other = "another context";
  ASSERT_TRUE(
      RegistryClient(registry_.host()).PushBlob("contexts", Sha256Digest(other), other).ok());
  const std::string blobs = "http://" + registry_.host() + "/v2/contexts/blobs/";
  struct Case {
    const char* what;
    std::string url;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"not found", blobs + Sha256Digest("absent") + "?grant=" + secret, "answered HTTP 404"},
      {"other content", blobs + Sha256Digest(other) + "?grant=" + secret, "has digest"},
      {"nothing listening",
       "http://agent:" + secret + "@127.0.0.1:" + std::to_string(test::FreeTcpPort()) +
           "/v1/contexts/" + assign_.context_digest + "?grant=" + secret,
       "failed"},
  };
  SyntheticBuilder builder(SyntheticBuildOptions{});
  for (const Case& c : cases) {
    AssignMsg assign = assign_;
    assign.context_url = c.url;
    Result<ImageDescriptor> result =
        JobRunner(builder, OptionsIn(dir_.path())).Run(assign, events_, nullptr);
    ASSERT_FALSE(result.ok()) << c.what;
    const std::string& error = result.status().message();
    EXPECT_EQ(error.find(secret), std::string::npos) << c.what << ": " << error;
    EXPECT_EQ(error.find("grant="), std::string::npos) << c.what << ": " << error;
    EXPECT_NE(error.find(RedactUrl(c.url)), std::string::npos) << c.what << ": " << error;
    EXPECT_NE(error.find(c.says), std::string::npos) << c.what << ": " << error;
  }
}

// The coordinator's API behind a private CA, played by a registry over TLS serving the
// context as a blob: the agent trusts it only with the CA given as --ca-file.
TEST_F(JobRunnerTest, AContextOverTlsNeedsTheAgentsCaFileAndSaysSo) {
  test::RegistryServer tls_registry;
  std::filesystem::create_directories(dir_.path() + "/tls");
  std::filesystem::create_directories(dir_.path() + "/other");
  Result<test::TestCertificate> ca =
      test::StartTlsRegistry(&tls_registry, dir_.path() + "/tls", {});
  ASSERT_TRUE(ca.ok()) << ca.status().message();
  std::string archive;
  ASSERT_TRUE(WriteTarFromDirectory(dir_.path() + "/context", nullptr, &archive).ok());
  RegistryOptions trust;
  std::filesystem::create_directories(dir_.path() + "/certs.d/" + tls_registry.host());
  std::filesystem::copy_file(ca->cert_file,
                             dir_.path() + "/certs.d/" + tls_registry.host() + "/ca.crt");
  trust.certs_dir = dir_.path() + "/certs.d";
  ASSERT_TRUE(RegistryClient(tls_registry.host(), trust)
                  .PushBlob("contexts", assign_.context_digest, archive)
                  .ok());
  const std::string grant = "?grant=0123456789abcdef";
  AssignMsg assign = assign_;
  assign.context_url =
      "https://" + tls_registry.host() + "/v2/contexts/blobs/" + assign_.context_digest + grant;
  Result<test::TestCertificate> other_ca = test::MakeTestCa(dir_.path() + "/other");
  ASSERT_TRUE(other_ca.ok()) << other_ca.status().message();
  auto pem = [](const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  SyntheticBuilder builder(SyntheticBuildOptions{});
  struct Case {
    const char* what;
    std::string ca_file;
    const char* says;
  };
  for (const Case& c :
       std::vector<Case>{{"no --ca-file", "", "give manifold-agent that CA with --ca-file FILE"},
                         {"another CA", other_ca->cert_file, "It is not signed by the CA in "}}) {
    JobRunnerOptions options = OptionsIn(dir_.path());
    options.api_ca_file = c.ca_file;
    if (!c.ca_file.empty()) options.api_ca_pem = pem(c.ca_file);
    Result<ImageDescriptor> result = JobRunner(builder, options).Run(assign, events_, nullptr);
    ASSERT_FALSE(result.ok()) << c.what;
    const std::string& error = result.status().message();
    EXPECT_NE(error.find("this agent cannot verify the TLS certificate of the coordinator's API "
                         "at https://" +
                         tls_registry.host() + "/v2/contexts/blobs/"),
              std::string::npos)
        << c.what << ": " << error;
    EXPECT_NE(error.find(c.says), std::string::npos) << c.what << ": " << error;
    EXPECT_EQ(error.find("grant"), std::string::npos) << c.what << ": " << error;
    EXPECT_FALSE(result.status().retryable()) << c.what;
  }
  JobRunnerOptions trusted = OptionsIn(dir_.path());
  trusted.api_ca_file = ca->cert_file;
  trusted.api_ca_pem = pem(ca->cert_file);
  Result<ImageDescriptor> built = JobRunner(builder, trusted).Run(assign, events_, nullptr);
  EXPECT_TRUE(built.ok()) << built.status().message();
}

}  // namespace
}  // namespace manifold
