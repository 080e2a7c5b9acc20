// Build secrets end to end on a real local farm (ops/farm.sh, agents on the CURVE link):
// `manifold build --secret id=token,src=FILE` for two platforms, a RUN step that reads the
// secret from its mount, and then a search for the secret's bytes everywhere it must not
// be: every layer and config of the pushed images, the farm's whole directory (PostgreSQL's
// data files and WAL, every process log, the agents' work dirs and container storage), a
// dump of the database, the build's log from the API and the CLI's own output. A second
// build whose job is still queued when the coordinator restarts fails with a clear reason,
// since the coordinator keeps secrets in memory only.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>

#include "common/digest.h"
#include "common/docker_config.h"
#include "common/layout.h"
#include "common/tar.h"
#include "tests/support/farm.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace manifold::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::seconds;

// The RUN step proves it could read the secret by writing its digest, not the secret.
constexpr const char* kSecretDockerfile = R"(FROM busybox
RUN --mount=type=secret,id=token sha256sum /run/secrets/token | cut -d' ' -f1 > /token.sha256
)";

std::string RandomSecret() {
  std::random_device device;
  std::string hex;
  for (int i = 0; i < 4; ++i) {
    char part[9];
    std::snprintf(part, sizeof part, "%08x", device());
    hex += part;
  }
  return "manifold-build-secret-" + hex;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Regular files under `root` whose bytes contain `needle`.
std::vector<std::string> FilesContaining(const std::string& root, const std::string& needle) {
  std::vector<std::string> found;
  std::error_code error;
  for (fs::recursive_directory_iterator
           it(root, fs::directory_options::skip_permission_denied, error),
       end;
       !error && it != end; it.increment(error)) {
    std::error_code entry_error;
    if (!it->is_regular_file(entry_error) || it->is_symlink(entry_error)) continue;
    if (ReadFile(it->path()).find(needle) != std::string::npos) {
      found.push_back(it->path().string());
    }
  }
  return found;
}

TEST(BuildSecretTest, ReadableInRunAndFoundNowhereElseLostSecretsFailAfterARestart) {
  Farm farm;
  Status up = farm.Up();
  ASSERT_TRUE(up.ok()) << up.message();
  TempDir dir("manifold-secret");
  const std::string secret = RandomSecret();
  const std::string secret_file = dir.path() + "/token";
  std::ofstream(secret_file) << secret;
  fs::create_directories(dir.path() + "/context");
  std::ofstream(dir.path() + "/context/Dockerfile") << kSecretDockerfile;

  const std::string tag = farm.registry() + "/secret:latest";
  CommandResult build =
      farm.Manifold({"build", "--platform", "linux/amd64,linux/arm64", "-t", tag, "--progress",
                     "plain", "--secret", "id=token,src=" + secret_file, dir.path() + "/context"});
  ASSERT_EQ(build.exit_code, 0) << build.output << "\n---- coordinator ----\n"
                                << farm.LogTail("coordinator");
  // Each agent handed the secret to buildah as a file, and only the file's name is logged.
  for (const char* platform : {"linux/amd64", "linux/arm64"}) {
    EXPECT_NE(build.output.find(std::string("[") + platform + "] manifold: buildah bud"),
              std::string::npos)
        << build.output;
  }
  EXPECT_NE(build.output.find("--secret id=token,src="), std::string::npos) << build.output;
  EXPECT_EQ(build.output.find(secret), std::string::npos) << build.output;

  // In each platform's image: the RUN step's record of the secret, and nowhere the secret.
  TempDir images("manifold-secret-images");
  for (const char* arch : {"amd64", "arm64"}) {
    SCOPED_TRACE(arch);
    const std::string layout = images.path() + "/" + arch;
    CommandResult copied =
        RunCommand({"skopeo", "copy", "--src-tls-verify=false", "--override-arch", arch,
                    "docker://" + tag, "oci:" + layout + ":image"},
                   seconds(120));
    ASSERT_EQ(copied.exit_code, 0) << copied.output;
    Result<OciLayoutImage> image = OpenLayoutImage(layout);
    ASSERT_TRUE(image.ok()) << image.status().message();
    Result<std::string> config = LayoutBlobPath(layout, image->manifest.config.digest);
    ASSERT_TRUE(config.ok()) << config.status().message();
    EXPECT_EQ(json::parse(ReadFile(*config), nullptr, false).value("architecture", ""), arch);
    std::string record;
    for (const auto& layer : image->manifest.layers) {
      Result<std::string> blob = LayoutBlobPath(layout, layer.digest);
      ASSERT_TRUE(blob.ok()) << blob.status().message();
      CommandResult unpacked = RunCommand({"gzip", "-dc", *blob}, seconds(60));
      ASSERT_EQ(unpacked.exit_code, 0) << layer.digest;
      EXPECT_EQ(unpacked.output.find(secret), std::string::npos)
          << "layer " << layer.digest << " holds the secret";
      CommandResult file = RunCommand({"tar", "-xzOf", *blob, "token.sha256"}, seconds(30));
      if (file.exit_code == 0) record = file.output;
    }
    EXPECT_EQ(record, DigestHex(Sha256Digest(secret)) + "\n");
    EXPECT_TRUE(FilesContaining(layout, secret).empty());  // config and manifests too
  }

  Result<HttpResponse> listed = farm.Api("GET", "/v1/builds?limit=1");
  ASSERT_TRUE(listed.ok());
  json builds = json::parse(listed->body, nullptr, false)["builds"];
  ASSERT_TRUE(builds.is_array() && builds.size() == 1) << listed->body;
  const uint64_t id = builds[0].value("id", uint64_t{0});
  EXPECT_EQ(builds[0]["secrets"], json::array({"token"})) << builds[0].dump();
  Result<HttpResponse> logs = farm.Api("GET", "/v1/builds/" + std::to_string(id) + "/logs");
  ASSERT_TRUE(logs.ok());
  EXPECT_NE(logs->body.find("buildah bud"), std::string::npos) << logs->body;
  EXPECT_EQ(logs->body.find(secret), std::string::npos);
  CommandResult dump = RunCommand({"pg_dump", "--data-only", farm.database_url()}, seconds(60));
  ASSERT_EQ(dump.exit_code, 0) << dump.output;
  EXPECT_NE(dump.output.find("token.sha256"), std::string::npos);  // the dump has the build
  EXPECT_EQ(dump.output.find(secret), std::string::npos);
  // PostgreSQL's data and WAL, every log, the agents' work and container storage; the
  // search does read PostgreSQL's files (the build's Dockerfile is found there).
  EXPECT_EQ(FilesContaining(farm.dir(), secret), std::vector<std::string>{});
  EXPECT_FALSE(FilesContaining(farm.dir() + "/farm/postgres", "token.sha256").empty());
  // The agents wrote the secret to a memory file system for the build and removed it.
  for (const auto& entry : fs::directory_iterator("/dev/shm")) {
    EXPECT_EQ(entry.path().filename().string().rfind("manifold-secrets-", 0), std::string::npos)
        << entry.path();
  }

  // A build queued when the coordinator restarts has lost its secrets: its job fails and
  // says why, instead of building without them. No agent serves ppc64le, so it waits.
  std::string context;
  ASSERT_TRUE(WriteTarFromDirectory(dir.path() + "/context", {}, &context).ok());
  std::string digest = Sha256Digest(context);
  ASSERT_EQ(farm.Api("PUT", "/v1/contexts/" + digest, context)->status, 201);
  json request = {{"platforms", {"linux/ppc64le"}},
                  {"tags", {farm.registry() + "/secret:queued"}},
                  {"context", digest},
                  {"dockerfile", kSecretDockerfile},
                  {"secrets", {{"token", Base64Encode(secret)}}}};
  Result<HttpResponse> queued = farm.Api("POST", "/v1/builds", request.dump());
  ASSERT_TRUE(queued.ok());
  ASSERT_EQ(queued->status, 201) << queued->body;
  const uint64_t queued_id = json::parse(queued->body).value("id", uint64_t{0});
  Status stopped = farm.Stop("coordinator");
  ASSERT_TRUE(stopped.ok()) << stopped.message() << "\n" << farm.LogTail("coordinator");
  Status started = farm.Start("coordinator");
  ASSERT_TRUE(started.ok()) << started.message();
  json failed;
  bool ended = WaitFor(
      [&] {
        Result<json> b = farm.GetBuild(queued_id);
        if (b.ok()) failed = *b;
        return b.ok() && failed.value("state", "") == "failed";
      },
      seconds(30));
  ASSERT_TRUE(ended) << failed.dump();
  EXPECT_NE(failed.value("error", "")
                .find("the build's secrets (--secret) are kept only in the "
                      "coordinator's memory"),
            std::string::npos)
      << failed.dump();
  EXPECT_EQ(FilesContaining(farm.dir(), secret), std::vector<std::string>{});
}

}  // namespace
}  // namespace manifold::test
