// The registry client and `manifold imagetools create` against a real registry behind a
// proxy that answers some requests itself, as what stands in front of registries does: an
// HTML page (a login portal, a web server at the wrong address) and rate limiting (429
// with Retry-After). Also cross-repository mounts, counted at the proxy.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <sstream>

#include "cli/login.h"
#include "common/digest.h"
#include "common/http_client.h"
#include "common/layout.h"
#include "common/oci.h"
#include "common/registry.h"
#include "coordinator/merger.h"
#include "tests/support/push_image.h"
#include "tests/support/registry_proxy_fixture.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_image.h"

namespace manifold {
namespace {

using test::CannedAnswer;
using test::CommandResult;
using test::Contains;
using test::Count;
using test::MakeTestImage;
using test::ProxiedRequest;
using test::RunCommand;
using test::TestImage;

constexpr auto kTimeout = std::chrono::seconds(60);
constexpr char kLoginPage[] =
    "<!DOCTYPE html>\n<html><head><title>Sign in to Example SSO</title></head>\n"
    "<body><form action=\"/login\"><input name=\"user\"></form></body></html>\n";

// An HTML page for every request whose target contains `target_contains`.
CannedAnswer HtmlPage(const std::string& method, const std::string& target_contains) {
  CannedAnswer answer;
  answer.method = method;
  answer.target_contains = target_contains;
  answer.times = -1;
  answer.status = 200;
  answer.content_type = "text/html; charset=utf-8";
  answer.body = kLoginPage;
  return answer;
}

class RegistryProxyTest : public test::RegistryProxyFixture {
 protected:
  // Pushes a one-platform image to REPO:TAG straight to the registry.
  TestImage Push(const std::string& repo, const std::string& tag, const char* arch) {
    TestImage image = MakeTestImage({"linux", arch, ""}, std::string(arch) + " " + repo);
    Status s = test::PushTestImage(*direct_, repo, tag, image);
    EXPECT_TRUE(s.ok()) << s.message();
    return image;
  }

  CommandResult Manifold(std::vector<std::string> args) {
    args.insert(args.begin(), std::string(MANIFOLD_BINARY_DIR) + "/cli/manifold");
    return RunCommand(args, kTimeout, {{"DOCKER_CONFIG", tmp_.path()}});
  }

  // Writes the image as an OCI layout in the test's directory and opens it.
  Result<OciLayoutImage> WriteLayout(const TestImage& image) {
    const std::string dir = tmp_.path() + "/layout-" + image.manifest.digest.substr(7, 12);
    Status s = test::WriteTestLayout(dir, {{&image, "latest"}});
    if (!s.ok()) return s;
    return OpenLayoutImage(dir, "latest");
  }

  // REPO:TAG through the proxy.
  std::string ViaProxy(const std::string& repo_and_tag) {
    return proxy_.host() + "/" + repo_and_tag;
  }
};

TEST_F(RegistryProxyTest, AnHtmlPageInsteadOfTheApiIsAClearErrorAndTagsNothing) {
  Push("team/app", "amd64", "amd64");
  Push("team/app", "arm64", "arm64");
  proxy_.Answer(HtmlPage("", "/v2/"));

  CommandResult r = Manifold({"imagetools", "create", "-t", ViaProxy("team/app:multi"),
                              ViaProxy("team/app:amd64"), ViaProxy("team/app:arm64")});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  // Registry, repository, operation, status, and what answered instead.
  EXPECT_TRUE(Contains(r.output, "registry " + proxy_.host())) << r.output;
  EXPECT_TRUE(Contains(r.output, "get manifest team/app:a")) << r.output;
  EXPECT_TRUE(Contains(r.output, "HTTP 200 with Content-Type text/html")) << r.output;
  EXPECT_TRUE(Contains(r.output, "Sign in to Example SSO")) << r.output;
  EXPECT_TRUE(Contains(r.output, "check that " + proxy_.host() + " is the registry's address"))
      << r.output;
  EXPECT_EQ(Count(proxy_.requests(), "PUT"), 0);
  EXPECT_FALSE(Tagged("team/app", "multi"));

  // The agent's push path: a HEAD answered by a web page is not "the blob is there".
  TestImage image = MakeTestImage({"linux", "amd64", ""}, "never pushed\n");
  Result<OciLayoutImage> layout = WriteLayout(image);
  ASSERT_TRUE(layout.ok()) << layout.status().message();
  RegistryClient client(proxy_.host(), Options());
  Result<Descriptor> pushed = client.PushLayout(*layout, "team/new");
  ASSERT_FALSE(pushed.ok());
  const std::string& message = pushed.status().message();
  EXPECT_EQ(pushed.status().code(), Status::Code::kFailedPrecondition) << message;
  EXPECT_TRUE(Contains(message, "check blob " + image.config.digest + " in team/new")) << message;
  EXPECT_TRUE(Contains(message, "HTTP 200 with Content-Type text/html")) << message;
  EXPECT_EQ(Count(proxy_.requests(), "PUT"), 0);
  EXPECT_FALSE(Tagged("team/new", image.manifest.digest));

  // Logging in to a web page stores nothing.
  LoginOptions login;
  login.registry = proxy_.host();
  login.username = "ci";
  login.config_dir = tmp_.path() + "/docker";
  login.registry_options = Options();
  std::istringstream password("s3cret\n");
  std::ostringstream out;
  std::ostringstream err;
  EXPECT_EQ(RunLogin(login, &password, &out, &err), 1);
  EXPECT_TRUE(Contains(err.str(), "text/html")) << err.str();
  EXPECT_FALSE(std::filesystem::exists(login.config_dir + "/config.json"));
}

// The sources read fine but the mount into the target repository meets a web page: the
// command fails before any tag is written.
TEST_F(RegistryProxyTest, AnHtmlPageHalfwayLeavesTheTagUntouched) {
  Push("src/amd64", "v1", "amd64");
  Push("team/app", "arm64", "arm64");
  proxy_.Answer(HtmlPage("POST", "/v2/team/app/blobs/uploads/"));
  CommandResult r = Manifold({"imagetools", "create", "-t", ViaProxy("team/app:multi"),
                              ViaProxy("src/amd64:v1"), ViaProxy("team/app:arm64")});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(Contains(r.output, "mount blob")) << r.output;
  EXPECT_TRUE(Contains(r.output, "from src/amd64 into team/app")) << r.output;
  EXPECT_TRUE(Contains(r.output, "Sign in to Example SSO")) << r.output;
  EXPECT_EQ(Count(proxy_.requests(), "PUT", "/manifests/multi"), 0);
  EXPECT_FALSE(Tagged("team/app", "multi"));
}

TEST_F(RegistryProxyTest, A429WaitsForRetryAfterThenSucceeds) {
  TestImage image = Push("team/app", "amd64", "amd64");
  CannedAnswer limited;
  limited.method = "PUT";
  limited.target_contains = "/v2/team/app/manifests/v1";
  limited.status = 429;
  limited.content_type = "application/json";
  limited.body = R"({"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]})";
  limited.headers = {{"Retry-After", "1"}};
  proxy_.Answer(limited);

  RegistryClient client(proxy_.host(), Options());
  Result<std::string> digest =
      client.PutManifest("team/app", "v1", image.manifest.media_type, image.manifest_bytes);
  ASSERT_TRUE(digest.ok()) << digest.status().message();
  EXPECT_EQ(*digest, image.manifest.digest);
  EXPECT_TRUE(Tagged("team/app", "v1"));

  // Two PUTs: the refused one, and the retry no sooner than the second Retry-After asked.
  std::vector<ProxiedRequest> puts;
  for (const ProxiedRequest& request : proxy_.requests()) {
    if (request.method == "PUT") puts.push_back(request);
  }
  ASSERT_EQ(puts.size(), 2u);
  EXPECT_EQ(puts[0].status, 429);
  EXPECT_EQ(puts[1].status, 201);
  EXPECT_GE(puts[1].received - puts[0].received, std::chrono::milliseconds(950));

  // A limit that never lifts ends in an error naming the status and what the registry said,
  // after the configured number of tries.
  limited.method = "GET";
  limited.target_contains = "/v2/team/app/manifests/amd64";
  limited.times = -1;
  proxy_.Answer(limited);
  RegistryOptions options = Options();
  options.max_attempts = 2;
  RegistryClient impatient(proxy_.host(), options);
  Result<FetchedManifest> got = impatient.GetManifest("team/app", "amd64");
  ASSERT_FALSE(got.ok());
  const std::string& message = got.status().message();
  EXPECT_EQ(got.status().code(), Status::Code::kUnavailable) << message;
  EXPECT_TRUE(Contains(message, "registry " + proxy_.host())) << message;
  EXPECT_TRUE(Contains(message, "get manifest team/app:amd64")) << message;
  EXPECT_TRUE(Contains(message, "HTTP 429")) << message;
  EXPECT_TRUE(Contains(message, "TOOMANYREQUESTS: slow down")) << message;
  EXPECT_EQ(Count(proxy_.requests(), "GET", "/manifests/amd64"), 2);
}

// An image pushed to a second repository of the registry mounts its blobs from the first;
// from a repository that lacks them the registry declines (202) and they are uploaded.
TEST_F(RegistryProxyTest, PushLayoutMountsFromAnotherRepositoryOrFallsBackToUpload) {
  TestImage image = MakeTestImage({"linux", "arm64", ""}, "pushed to three repositories\n");
  Result<OciLayoutImage> layout = WriteLayout(image);
  ASSERT_TRUE(layout.ok()) << layout.status().message();
  RegistryClient client(proxy_.host(), Options());
  const int64_t blob_bytes = image.config.size + image.layers[0].size;

  PushStats first;
  ASSERT_TRUE(client.PushLayout(*layout, "team/first", &first).ok());
  EXPECT_EQ(first.blobs_pushed, 2);

  PushStats second;
  int skipped_callbacks = 0;
  Result<Descriptor> pushed = client.PushLayout(
      *layout, "other/second", &second,
      [&](const Descriptor&, bool skipped) { skipped_callbacks += skipped ? 1 : 0; }, "team/first");
  ASSERT_TRUE(pushed.ok()) << pushed.status().message();
  EXPECT_EQ(second.blobs_mounted, 2);
  EXPECT_EQ(second.bytes_mounted, blob_bytes);
  EXPECT_EQ(second.blobs_pushed, 0);
  EXPECT_EQ(second.bytes_pushed, 0);
  EXPECT_EQ(skipped_callbacks, 2);
  // Two mount requests, and no upload session opened for other/second.
  std::vector<ProxiedRequest> requests = proxy_.requests();
  EXPECT_EQ(Count(requests, "POST", "/v2/other/second/blobs/uploads/?mount="), 2);
  EXPECT_EQ(Count(requests, "PATCH"), 0);
  EXPECT_EQ(Count(requests, "PUT", "/v2/other/second/blobs/"), 0);
  // The registry serves the image from the second repository, blobs included.
  for (const Descriptor* blob : {&image.config, &image.layers[0]}) {
    Result<std::string> bytes = direct_->GetBlob("other/second", blob->digest);
    EXPECT_TRUE(bytes.ok()) << bytes.status().message();
  }
  CommandResult skopeo =
      RunCommand({"skopeo", "inspect", "--tls-verify=false", "--no-tags",
                  "docker://" + registry_.host() + "/other/second@" + image.manifest.digest},
                 kTimeout);
  EXPECT_EQ(skopeo.exit_code, 0) << skopeo.output;

  // Mounting from a repository that does not hold the blobs: declined, then uploaded.
  PushStats third;
  pushed = client.PushLayout(*layout, "team/third", &third, nullptr, "team/empty");
  ASSERT_TRUE(pushed.ok()) << pushed.status().message();
  EXPECT_EQ(third.blobs_mounted, 0);
  EXPECT_EQ(third.blobs_pushed, 2);
  EXPECT_EQ(third.bytes_pushed, blob_bytes);
}

// imagetools create HEADs each child in the target repository: the ones there already are
// left alone; the others are mounted from their source repository, manifest copied by
// digest, before the tag is written.
TEST_F(RegistryProxyTest, ImagetoolsCreateMountsOnlyTheChildrenMissingFromTheTarget) {
  TestImage amd64 = Push("src/amd64", "v1", "amd64");
  TestImage arm64 = Push("team/app", "arm64", "arm64");
  CommandResult r = Manifold({"imagetools", "create", "-t", ViaProxy("team/app:multi"),
                              ViaProxy("src/amd64:v1"), ViaProxy("team/app:arm64")});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<ProxiedRequest> requests = proxy_.requests();
  EXPECT_EQ(Count(requests, "HEAD", "/v2/team/app/manifests/" + amd64.manifest.digest), 1);
  EXPECT_EQ(Count(requests, "POST", "/v2/team/app/blobs/uploads/?mount="), 2);
  EXPECT_EQ(Count(requests, "POST", "/v2/team/app/blobs/uploads/"), 2);  // no plain upload
  EXPECT_EQ(Count(requests, "PUT", "/v2/team/app/manifests/" + amd64.manifest.digest), 1);
  EXPECT_EQ(Count(requests, "PUT", "/v2/team/app/manifests/multi"), 1);
  EXPECT_EQ(Count(requests, "HEAD", arm64.manifest.digest), 0);  // it lives in team/app
  Result<bool> copied = direct_->ManifestExists("team/app", amd64.manifest.digest);
  ASSERT_TRUE(copied.ok()) << copied.status().message();
  EXPECT_TRUE(*copied);

  // Again: the child is there now, found by one HEAD, and nothing is copied.
  const size_t before = requests.size();
  r = Manifold({"imagetools", "create", "-t", ViaProxy("team/app:multi"), ViaProxy("src/amd64:v1"),
                ViaProxy("team/app:arm64")});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  requests = proxy_.requests();
  std::vector<ProxiedRequest> again(requests.begin() + static_cast<long>(before), requests.end());
  EXPECT_EQ(Count(again, "HEAD", "/v2/team/app/manifests/" + amd64.manifest.digest), 1);
  EXPECT_EQ(Count(again, "POST"), 0);
  EXPECT_EQ(Count(again, "PUT", "/v2/team/app/manifests/sha256:"), 0);
}

// The coordinator's merge with tags in two repositories of one registry, the images
// pushed to the first only: each child is copied into the second (blobs mounted) before
// the index is tagged there. A child missing everywhere fails the merge, tagging nothing.
TEST_F(RegistryProxyTest, MergeCopiesChildrenIntoEveryTaggedRepository) {
  TestImage amd64 = Push("team/app", "amd64", "amd64");
  TestImage arm64 = Push("team/app", "arm64", "arm64");
  BuildRecord build;
  build.id = 7;
  build.spec.tags = {ViaProxy("team/app:v1"), ViaProxy("mirror/app:v1")};
  build.jobs = {test::SucceededJob(amd64), test::SucceededJob(arm64)};
  Result<PushedIndex> pushed = Merger().MergeAndPushIndex(build);
  ASSERT_TRUE(pushed.ok()) << pushed.status().message();
  Result<FetchedManifest> mirrored = direct_->GetManifest("mirror/app", "v1");
  ASSERT_TRUE(mirrored.ok()) << mirrored.status().message();
  EXPECT_EQ(mirrored->digest, pushed->digest);
  std::vector<ProxiedRequest> requests = proxy_.requests();
  // The children are checked by one HEAD each, from what the jobs reported: no config is
  // downloaded (the copies into mirror/app mount their blobs).
  EXPECT_EQ(Count(requests, "HEAD", "/v2/team/app/manifests/sha256:"), 2);
  EXPECT_EQ(Count(requests, "GET", "/v2/team/app/blobs/"), 0);
  EXPECT_EQ(Count(requests, "POST", "/v2/mirror/app/blobs/uploads/?mount="), 4);
  EXPECT_EQ(Count(requests, "PATCH"), 0);
  // skopeo resolves the arm64 child of the mirrored index down to its config.
  CommandResult arm = RunCommand({"skopeo", "inspect", "--tls-verify=false", "--override-arch",
                                  "arm64", "docker://" + registry_.host() + "/mirror/app:v1"},
                                 kTimeout);
  ASSERT_EQ(arm.exit_code, 0) << arm.output;
  EXPECT_TRUE(Contains(arm.output, "\"Architecture\": \"arm64\"")) << arm.output;

  // A job whose image is nowhere: the merge fails and neither tag is written.
  build.spec.tags = {ViaProxy("team/app:v2"), ViaProxy("mirror/app:v2")};
  build.jobs[1].manifest.digest = Sha256Digest("no such manifest");
  Result<PushedIndex> failed = Merger().MergeAndPushIndex(build);
  ASSERT_FALSE(failed.ok());
  EXPECT_TRUE(Contains(failed.status().message(), "HTTP 404")) << failed.status().message();
  EXPECT_FALSE(Tagged("team/app", "v2"));
  EXPECT_FALSE(Tagged("mirror/app", "v2"));
}

// A registry may refuse a manifest for a blob it has just acknowledged, when another push
// of the same blob to the same repository ran at the same moment (docker-registry rewrites
// the repository's link to the blob in place). The push checks its blobs and puts the
// manifest again; a registry that keeps refusing ends, after three tries, in the error it
// gave, which is not retryable (the blob may really be missing).
TEST_F(RegistryProxyTest, AManifestRefusedForAMissingBlobIsPutAgainAfterTheBlobsAreChecked) {
  TestImage image = MakeTestImage({"linux", "amd64", ""}, "raced by another push\n");
  Result<OciLayoutImage> layout = WriteLayout(image);
  ASSERT_TRUE(layout.ok()) << layout.status().message();
  CannedAnswer lost;
  lost.method = "PUT";
  lost.target_contains = "/v2/team/raced/manifests/";
  lost.status = 400;
  lost.content_type = "application/json";
  lost.body = R"({"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match )"
              R"(uploaded content"},{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown )"
              R"(to registry","detail":")" +
              image.layers[0].digest + R"("}]})";
  proxy_.Answer(lost);

  RegistryClient client(proxy_.host(), Options());
  PushStats stats;
  Result<Descriptor> pushed = client.PushLayout(*layout, "team/raced", &stats);
  ASSERT_TRUE(pushed.ok()) << pushed.status().message();
  EXPECT_EQ(pushed->digest, image.manifest.digest);
  EXPECT_TRUE(Tagged("team/raced", image.manifest.digest));
  EXPECT_EQ(Count(proxy_.requests(), "PUT", "/v2/team/raced/manifests/"), 2);
  EXPECT_EQ(Count(proxy_.requests(), "HEAD", "/v2/team/raced/blobs/"), 4);  // 2 blobs, twice
  EXPECT_EQ(stats.blobs_pushed, 2);  // uploaded once, counted once
  EXPECT_EQ(stats.blobs_skipped, 0);

  lost.target_contains = "/v2/team/never/manifests/";
  lost.times = -1;
  proxy_.Answer(lost);
  Result<Descriptor> refused = client.PushLayout(*layout, "team/never");
  ASSERT_FALSE(refused.ok());
  const std::string& message = refused.status().message();
  EXPECT_FALSE(refused.status().retryable()) << message;
  EXPECT_TRUE(Contains(message, "HTTP 400")) << message;
  EXPECT_TRUE(Contains(message, "MANIFEST_BLOB_UNKNOWN")) << message;
  EXPECT_EQ(Count(proxy_.requests(), "PUT", "/v2/team/never/manifests/"), 3);
}

// One client sends its requests one after another over one connection (HttpClient keeps
// it open), rather than connecting for each.
TEST_F(RegistryProxyTest, SuccessiveRequestsShareOneConnection) {
  TestImage image = MakeTestImage({"linux", "amd64", ""}, "over one connection\n");
  Result<OciLayoutImage> layout = WriteLayout(image);
  ASSERT_TRUE(layout.ok()) << layout.status().message();
  RegistryClient client(proxy_.host(), Options());
  ASSERT_TRUE(client.PushLayout(*layout, "team/app").ok());
  ASSERT_TRUE(client.GetManifest("team/app", image.manifest.digest).ok());
  std::vector<ProxiedRequest> requests = proxy_.requests();
  ASSERT_GE(requests.size(), 8u);  // 2 HEADs, 2 x (POST, PUT), the manifest PUT and GET
  std::set<int> connections;
  for (const ProxiedRequest& r : requests) connections.insert(r.client_port);
  EXPECT_EQ(connections.size(), 1u);
}

// Registries that send Location as a path (query included) and ask for chunks of at least
// OCI-Chunk-Min-Length bytes: a chunked upload follows both and completes.
TEST_F(RegistryProxyTest, ChunkedUploadFollowsRelativeLocationsAndTheChunkMinimum) {
  proxy_.MakeLocationsRelative();
  CannedAnswer minimum;
  minimum.method = "POST";
  minimum.target_contains = "/blobs/uploads/";
  minimum.times = -1;
  minimum.forward = true;
  minimum.headers = {{"OCI-Chunk-Min-Length", std::to_string(1 << 20)}};
  proxy_.Answer(minimum);
  // What a client is told when it opens an upload session.
  HttpRequest open;
  open.method = "POST";
  open.url = "http://" + proxy_.host() + "/v2/team/chunks/blobs/uploads/";
  Result<HttpResponse> opened = HttpClient().Send(open);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  EXPECT_EQ(opened->Header("location").rfind("/v2/team/chunks/blobs/uploads/", 0), 0u)
      << opened->Header("location");
  EXPECT_TRUE(Contains(opened->Header("location"), "?_state=")) << opened->Header("location");
  EXPECT_EQ(opened->Header("oci-chunk-min-length"), std::to_string(1 << 20));

  TestImage image = MakeTestImage({"linux", "amd64", ""}, std::string(3 << 20, 'x'));
  Result<OciLayoutImage> layout = WriteLayout(image);
  ASSERT_TRUE(layout.ok()) << layout.status().message();
  RegistryOptions options = Options();
  options.chunked_threshold_bytes = 1 << 20;
  options.chunk_bytes = 256 << 10;  // smaller than the registry's minimum, so raised to it
  RegistryClient client(proxy_.host(), options);
  Result<Descriptor> pushed = client.PushLayout(*layout, "team/chunks");
  ASSERT_TRUE(pushed.ok()) << pushed.status().message();

  std::vector<size_t> chunks;
  for (const ProxiedRequest& r : proxy_.requests()) {
    if (r.method == "PATCH") chunks.push_back(r.body_bytes);
  }
  const int64_t layer = image.layers[0].size;
  ASSERT_EQ(chunks.size(), static_cast<size_t>((layer + (1 << 20) - 1) / (1 << 20)));
  for (size_t i = 0; i + 1 < chunks.size(); ++i) EXPECT_EQ(chunks[i], size_t{1} << 20);
  Result<std::string> stored = direct_->GetBlob("team/chunks", image.layers[0].digest);
  ASSERT_TRUE(stored.ok()) << stored.status().message();
  EXPECT_EQ(*stored, image.layer_bytes[0]);
}

}  // namespace
}  // namespace manifold
