// RegistryClient against a real distribution registry, checked with skopeo as an
// independent reader of what was pushed.
#include "common/registry.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <utility>
#include <vector>

#include "common/digest.h"
#include "common/http_client.h"
#include "common/layout.h"
#include "common/oci.h"
#include "tests/support/ports.h"
#include "tests/support/registry_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_image.h"

namespace manifold {
namespace {

using test::MakeTestImage;
using test::RegistryServer;
using test::RunCommand;
using test::TempDir;
using test::TestImage;

constexpr auto kSkopeoTimeout = std::chrono::seconds(60);

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Pushes an image's blobs and its manifest by digest.
void PushImage(const RegistryClient& client, const std::string& repo, const TestImage& image) {
  ASSERT_TRUE(client.PushBlob(repo, image.config.digest, image.config_bytes).ok());
  for (size_t i = 0; i < image.layers.size(); ++i) {
    Status s = client.PushBlob(repo, image.layers[i].digest, image.layer_bytes[i]);
    ASSERT_TRUE(s.ok()) << s.message();
  }
  Result<std::string> digest = client.PutManifest(repo, image.manifest.digest,
                                                  image.manifest.media_type, image.manifest_bytes);
  ASSERT_TRUE(digest.ok()) << digest.status().message();
  ASSERT_EQ(*digest, image.manifest.digest);
}

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status s = registry_.Start();
    ASSERT_TRUE(s.ok()) << s.message();
    client_ = std::make_unique<RegistryClient>(registry_.host());
  }

  // `skopeo inspect [extra] docker://HOST/REF`, failing the test when skopeo does.
  std::string Skopeo(const std::string& ref, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {"skopeo", "inspect", "--tls-verify=false"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("docker://" + registry_.host() + "/" + ref);
    test::CommandResult r = RunCommand(argv, kSkopeoTimeout);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return r.output;
  }

  // Builds, pushes and reads back an index over an amd64 and an arm64 image.
  void CheckTwoPlatformIndex(const std::string& repo, bool docker) {
    const RegistryClient& client = *client_;
    TestImage amd64 = MakeTestImage({"linux", "amd64", ""}, "amd64\n", docker);
    TestImage arm64 = MakeTestImage({"linux", "arm64", ""}, "arm64\n", docker);
    PushImage(client, repo, amd64);
    PushImage(client, repo, arm64);

    std::vector<IndexChild> children;
    for (const TestImage* image : {&amd64, &arm64}) {
      // The platform comes from the image config, as the coordinator does it.
      Result<Platform> platform = ParseImageConfigPlatform(image->config_bytes);
      ASSERT_TRUE(platform.ok()) << platform.status().message();
      children.push_back({image->manifest, *platform});
    }
    std::string media_type;
    Result<std::string> index_bytes = BuildIndex(children, {}, &media_type);
    ASSERT_TRUE(index_bytes.ok()) << index_bytes.status().message();
    EXPECT_EQ(media_type, docker ? kDockerManifestList : kOciIndex);
    Result<std::string> index_digest = client.PutManifest(repo, "multi", media_type, *index_bytes);
    ASSERT_TRUE(index_digest.ok()) << index_digest.status().message();
    EXPECT_EQ(*index_digest, Sha256Digest(*index_bytes));

    Result<FetchedManifest> got = client.GetManifest(repo, "multi");
    ASSERT_TRUE(got.ok()) << got.status().message();
    EXPECT_EQ(got->media_type, media_type);
    EXPECT_EQ(got->bytes, *index_bytes);

    // skopeo, an independent reader, sees both platforms with the right digests...
    test::CommandResult raw = RunCommand({"skopeo", "inspect", "--raw", "--tls-verify=false",
                                          "docker://" + registry_.host() + "/" + repo + ":multi"},
                                         kSkopeoTimeout);
    ASSERT_EQ(raw.exit_code, 0) << raw.output;
    Result<Index> index = ParseIndex(raw.output);
    ASSERT_TRUE(index.ok()) << index.status().message() << "\n" << raw.output;
    EXPECT_EQ(index->media_type, media_type);
    ASSERT_EQ(index->manifests.size(), 2u);
    EXPECT_EQ(index->manifests[0].platform, (Platform{"linux", "amd64", ""}));
    EXPECT_EQ(index->manifests[0].digest, amd64.manifest.digest);
    EXPECT_EQ(index->manifests[1].platform, (Platform{"linux", "arm64", ""}));
    EXPECT_EQ(index->manifests[1].digest, arm64.manifest.digest);

    // ...and resolves the arm64 child through the index to its config.
    EXPECT_TRUE(Contains(Skopeo(repo + ":multi", {"--override-arch", "arm64"}),
                         "\"Architecture\": \"arm64\""));
  }

  RegistryServer registry_;
  std::unique_ptr<RegistryClient> client_;
  TempDir tmp_;
};

TEST_F(RegistryTest, PlainHttpIsTheDefaultOnlyForLoopbackHosts) {
  EXPECT_EQ(client_->base_url(), "http://" + registry_.host());
  EXPECT_EQ(RegistryClient("ghcr.io").base_url(), "https://ghcr.io");
  RegistryOptions forced;
  forced.plain_http = false;
  EXPECT_EQ(RegistryClient("127.0.0.1:5000", forced).base_url(), "https://127.0.0.1:5000");
}

TEST_F(RegistryTest, PushesBlobsFromMemoryAndFilesAndReadsThemBack) {
  const std::string repo = "team/blobs";
  const std::string bytes = "a small blob\n";
  const std::string digest = Sha256Digest(bytes);
  Result<bool> exists = client_->BlobExists(repo, digest);
  ASSERT_TRUE(exists.ok()) << exists.status().message();
  EXPECT_FALSE(*exists);

  Status s = client_->PushBlob(repo, digest, bytes);
  ASSERT_TRUE(s.ok()) << s.message();
  exists = client_->BlobExists(repo, digest);
  ASSERT_TRUE(exists.ok()) << exists.status().message();
  EXPECT_TRUE(*exists);
  Result<std::string> fetched = client_->GetBlob(repo, digest);
  ASSERT_TRUE(fetched.ok()) << fetched.status().message();
  EXPECT_EQ(*fetched, bytes);

  // A file larger than one upload buffer, streamed from disk.
  std::string big(5 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 7919) >> 3);
  const std::string path = tmp_.path() + "/big.bin";
  std::ofstream(path, std::ios::binary) << big;
  const std::string big_digest = Sha256Digest(big);
  s = client_->PushBlobFromFile(repo, big_digest, static_cast<int64_t>(big.size()), path);
  ASSERT_TRUE(s.ok()) << s.message();
  fetched = client_->GetBlob(repo, big_digest);
  ASSERT_TRUE(fetched.ok()) << fetched.status().message();
  EXPECT_TRUE(*fetched == big);

  // An empty blob is a valid blob too.
  s = client_->PushBlob(repo, Sha256Digest(""), "");
  ASSERT_TRUE(s.ok()) << s.message();

  // The size given must be the file's.
  s = client_->PushBlobFromFile(repo, big_digest, 12, path);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.message();
}

TEST_F(RegistryTest, PutsManifestsByDigestAndTagAndGetsThemBack) {
  const std::string repo = "team/app";
  TestImage image = MakeTestImage({"linux", "amd64", ""}, "hello\n");
  PushImage(*client_, repo, image);
  Result<std::string> tagged =
      client_->PutManifest(repo, "v1.0", image.manifest.media_type, image.manifest_bytes);
  ASSERT_TRUE(tagged.ok()) << tagged.status().message();
  EXPECT_EQ(*tagged, image.manifest.digest);

  for (const std::string& ref : {std::string("v1.0"), image.manifest.digest}) {
    Result<FetchedManifest> got = client_->GetManifest(repo, ref);
    ASSERT_TRUE(got.ok()) << got.status().message();
    EXPECT_EQ(got->bytes, image.manifest_bytes);
    EXPECT_EQ(got->digest, image.manifest.digest);
    EXPECT_EQ(got->media_type, kOciManifest);
  }

  // A digest reference must be the digest of the bytes sent.
  Result<std::string> wrong = client_->PutManifest(repo, "sha256:" + std::string(64, '1'),
                                                   kOciManifest, image.manifest_bytes);
  EXPECT_EQ(wrong.status().code(), Status::Code::kInvalidArgument);

  // skopeo reads the config through the manifest we pushed.
  EXPECT_TRUE(Contains(Skopeo(repo + ":v1.0"), "\"Architecture\": \"amd64\""));
}

TEST_F(RegistryTest, PushesAnOciIndexThatSkopeoReads) {
  CheckTwoPlatformIndex("team/multi-oci", /*docker=*/false);
}

TEST_F(RegistryTest, PushesADockerManifestListThatSkopeoReads) {
  CheckTwoPlatformIndex("team/multi-docker", /*docker=*/true);
}

TEST_F(RegistryTest, PushLayoutSkipsBlobsTheRepositoryHas) {
  TestImage image = MakeTestImage({"linux", "arm", "v7"}, "from a layout\n");
  const std::string dir = tmp_.path() + "/layout";
  ASSERT_TRUE(test::WriteTestLayout(dir, {{&image, "latest"}}).ok());
  Result<OciLayoutImage> layout = OpenLayoutImage(dir, "latest");
  ASSERT_TRUE(layout.ok()) << layout.status().message();

  PushStats stats;
  int callbacks = 0;
  Result<Descriptor> pushed =
      client_->PushLayout(*layout, "team/layout", &stats, [&](const Descriptor&, bool skipped) {
        ++callbacks;
        EXPECT_FALSE(skipped);
      });
  ASSERT_TRUE(pushed.ok()) << pushed.status().message();
  EXPECT_EQ(pushed->digest, image.manifest.digest);
  EXPECT_EQ(pushed->media_type, kOciManifest);
  EXPECT_EQ(pushed->size, image.manifest.size);
  EXPECT_EQ(pushed->platform, (Platform{"linux", "arm", "v7"}));
  EXPECT_EQ(stats.blobs_pushed, 2);
  EXPECT_EQ(stats.bytes_pushed, image.config.size + image.layers[0].size);
  EXPECT_EQ(stats.blobs_skipped, 0);
  EXPECT_EQ(callbacks, 2);

  // The second push finds both blobs by HEAD and uploads nothing.
  PushStats again;
  pushed = client_->PushLayout(*layout, "team/layout", &again);
  ASSERT_TRUE(pushed.ok()) << pushed.status().message();
  EXPECT_EQ(again.blobs_pushed, 0);
  EXPECT_EQ(again.bytes_pushed, 0);
  EXPECT_EQ(again.blobs_skipped, 2);
  EXPECT_EQ(again.bytes_skipped, image.config.size + image.layers[0].size);

  // skopeo copies the image back out of the registry byte for byte, verifying every blob's
  // digest on the way.
  const std::string copy_dir = tmp_.path() + "/copy";
  test::CommandResult copy =
      RunCommand({"skopeo", "copy", "--src-tls-verify=false", "--preserve-digests",
                  "docker://" + registry_.host() + "/team/layout@" + image.manifest.digest,
                  "oci:" + copy_dir + ":copied"},
                 kSkopeoTimeout);
  ASSERT_EQ(copy.exit_code, 0) << copy.output;
  Result<OciLayoutImage> copied = OpenLayoutImage(copy_dir, "copied");
  ASSERT_TRUE(copied.ok()) << copied.status().message();
  EXPECT_EQ(copied->descriptor.digest, image.manifest.digest);
  EXPECT_EQ(copied->manifest_bytes, image.manifest_bytes);
}

// What a RegistryRequestObserver saw, as "operation status" lines.
struct ObservedRequests {
  std::mutex mu;
  std::vector<std::string> seen;

  RegistryRequestObserver Observer() {
    return [this](RegistryOperation operation, long status) {
      std::lock_guard<std::mutex> lock(mu);
      seen.push_back(std::string(RegistryOperationName(operation)) + " " +
                     RegistryStatusName(status));
    };
  }
  std::vector<std::string> Take() {
    std::lock_guard<std::mutex> lock(mu);
    return std::exchange(seen, {});
  }
};

// The observer the programs' metrics hang on: one call per HTTP request with what it did
// and the registry's status, for a first push, a second one that finds every blob, and
// a push to another repository that mounts them.
TEST_F(RegistryTest, ObserverSeesEveryRequestWithItsOperationAndStatus) {
  TestImage image = MakeTestImage({"linux", "amd64", ""}, "observed\n");
  const std::string dir = tmp_.path() + "/layout";
  ASSERT_TRUE(test::WriteTestLayout(dir, {{&image, "latest"}}).ok());
  Result<OciLayoutImage> layout = OpenLayoutImage(dir, "latest");
  ASSERT_TRUE(layout.ok()) << layout.status().message();
  ObservedRequests observed;
  RegistryOptions options;
  options.on_request = observed.Observer();
  RegistryClient client(registry_.host(), options);

  ASSERT_TRUE(client.CheckAccess().ok());
  EXPECT_EQ(observed.Take(), (std::vector<std::string>{"ping 200"}));

  ASSERT_TRUE(client.PushLayout(*layout, "team/observed").ok());
  EXPECT_EQ(observed.Take(),
            (std::vector<std::string>{"blob_head 404", "blob_upload_start 202", "blob_upload 201",
                                      "blob_head 404", "blob_upload_start 202", "blob_upload 201",
                                      "manifest_put 201"}));

  ASSERT_TRUE(client.PushLayout(*layout, "team/observed").ok());
  EXPECT_EQ(observed.Take(),
            (std::vector<std::string>{"blob_head 200", "blob_head 200", "manifest_put 201"}));

  ASSERT_TRUE(client.PushLayout(*layout, "team/mounted", nullptr, nullptr, "team/observed").ok());
  EXPECT_EQ(observed.Take(),
            (std::vector<std::string>{"blob_head 404", "blob_mount 201", "blob_head 404",
                                      "blob_mount 201", "manifest_put 201"}));

  Result<FetchedManifest> got = client.GetManifest("team/mounted", image.manifest.digest);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_TRUE(client.GetBlob("team/mounted", image.config.digest).ok());
  EXPECT_FALSE(*client.ManifestExists("team/other", image.manifest.digest));
  EXPECT_EQ(observed.Take(),
            (std::vector<std::string>{"manifest_get 200", "blob_get 200", "manifest_head 404"}));
}

// HttpClient's file streaming, which the agent uses for build contexts, against the
// registry as a real HTTP server.
TEST_F(RegistryTest, HttpClientStreamsSuccessfulBodiesToFiles) {
  const std::string bytes(300000, 'z');
  const std::string digest = Sha256Digest(bytes);
  ASSERT_TRUE(client_->PushBlob("team/files", digest, bytes).ok());
  const std::string blob_url = client_->base_url() + "/v2/team/files/blobs/" + digest;
  HttpClient http;

  HttpRequest get;
  get.url = blob_url;
  get.response_file = tmp_.path() + "/blob";
  Result<HttpResponse> response = http.Send(get);
  ASSERT_TRUE(response.ok()) << response.status().message();
  EXPECT_EQ(response->status, 200);
  EXPECT_TRUE(response->body.empty());
  EXPECT_EQ(response->Header("Docker-Content-Digest"), digest);
  Result<std::string> on_disk = Sha256FileDigest(get.response_file);
  ASSERT_TRUE(on_disk.ok());
  EXPECT_EQ(*on_disk, digest);

  // An error body stays in memory for the message and leaves no file behind.
  HttpRequest missing = get;
  missing.url = client_->base_url() + "/v2/team/files/blobs/sha256:" + std::string(64, '0');
  missing.response_file = tmp_.path() + "/missing";
  response = http.Send(missing);
  ASSERT_TRUE(response.ok()) << response.status().message();
  EXPECT_EQ(response->status, 404);
  EXPECT_TRUE(Contains(response->body, "BLOB_UNKNOWN")) << response->body;
  EXPECT_FALSE(std::filesystem::exists(missing.response_file));

  // HEAD reports the size without a body.
  HttpRequest head;
  head.method = "HEAD";
  head.url = blob_url;
  response = http.Send(head);
  ASSERT_TRUE(response.ok()) << response.status().message();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->Header("content-length"), std::to_string(bytes.size()));
  EXPECT_TRUE(response->body.empty());

  // A body over the limit fails the request instead of filling memory.
  HttpRequest limited;
  limited.url = blob_url;
  limited.max_body_bytes = 1000;
  response = http.Send(limited);
  ASSERT_FALSE(response.ok());
  EXPECT_TRUE(Contains(response.status().message(), "larger than the limit"))
      << response.status().message();
}

// A blob larger than any body kept in memory (a cached layer of a big project) goes to a
// file as it arrives, and only whole and verified.
TEST_F(RegistryTest, GetsABlobLargerThanMemoryBodiesIntoAFile) {
  const std::string repo = "team/large";
  const std::string path = tmp_.path() + "/large.bin";
  {
    std::ofstream out(path, std::ios::binary);
    std::string chunk(1 << 20, '\0');
    for (int mib = 0; mib < 257; ++mib) {
      for (size_t i = 0; i < chunk.size(); i += 64) chunk[i] = static_cast<char>(mib + i);
      out << chunk;
    }
  }
  Result<std::string> digest = Sha256FileDigest(path);
  ASSERT_TRUE(digest.ok()) << digest.status().message();
  const int64_t size = int64_t{257} << 20;
  Status pushed = client_->PushBlobFromFile(repo, *digest, size, path);
  ASSERT_TRUE(pushed.ok()) << pushed.message();
  EXPECT_FALSE(client_->GetBlob(repo, *digest).ok()) << "over the in-memory limit";

  const std::string fetched = tmp_.path() + "/fetched.bin";
  Result<uint64_t> got = client_->GetBlobToFile(repo, *digest, fetched);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(*got, static_cast<uint64_t>(size));
  EXPECT_EQ(Sha256FileDigest(fetched).value(), *digest);
  EXPECT_FALSE(std::filesystem::exists(fetched + ".partial"));

  // A blob the registry does not have leaves no file behind.
  const std::string missing = tmp_.path() + "/missing.bin";
  Result<uint64_t> none = client_->GetBlobToFile(repo, "sha256:" + std::string(64, '0'), missing);
  EXPECT_EQ(none.status().code(), Status::Code::kNotFound) << none.status().message();
  EXPECT_FALSE(std::filesystem::exists(missing));
  EXPECT_FALSE(std::filesystem::exists(missing + ".partial"));
}

TEST_F(RegistryTest, ReportsMissingContent) {
  const std::string unknown = "sha256:" + std::string(64, '0');
  Result<bool> exists = client_->BlobExists("team/app", unknown);
  ASSERT_TRUE(exists.ok()) << exists.status().message();
  EXPECT_FALSE(*exists);

  Result<std::string> blob = client_->GetBlob("team/app", unknown);
  ASSERT_FALSE(blob.ok());
  EXPECT_EQ(blob.status().code(), Status::Code::kNotFound);
  EXPECT_TRUE(Contains(blob.status().message(), registry_.host())) << blob.status().message();
  EXPECT_TRUE(Contains(blob.status().message(), "HTTP 404")) << blob.status().message();

  Result<FetchedManifest> manifest = client_->GetManifest("team/app", "nope");
  ASSERT_FALSE(manifest.ok());
  EXPECT_EQ(manifest.status().code(), Status::Code::kNotFound);
  EXPECT_TRUE(Contains(manifest.status().message(), "team/app:nope"));
}

TEST_F(RegistryTest, ManifestReferencingAMissingBlobNamesRegistryAndStatus) {
  TestImage image = MakeTestImage({"linux", "amd64", ""}, "never pushed\n");
  Result<std::string> digest =
      client_->PutManifest("team/app", "latest", kOciManifest, image.manifest_bytes);
  ASSERT_FALSE(digest.ok());
  const std::string& message = digest.status().message();
  EXPECT_FALSE(digest.status().retryable());
  EXPECT_TRUE(Contains(message, "registry " + registry_.host())) << message;
  EXPECT_TRUE(Contains(message, "put manifest team/app:latest")) << message;
  EXPECT_TRUE(Contains(message, "HTTP 400")) << message;
  EXPECT_TRUE(Contains(message, "MANIFEST_BLOB_UNKNOWN")) << message;
}

TEST_F(RegistryTest, BlobWithTheWrongDigestIsRefused) {
  Status s = client_->PushBlob("team/app", Sha256Digest("other bytes"), "these bytes");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.message();
  EXPECT_TRUE(Contains(s.message(), "DIGEST_INVALID")) << s.message();
}

TEST_F(RegistryTest, RefusesMalformedNamesWithoutAsking) {
  const std::string digest = Sha256Digest("x");
  EXPECT_EQ(client_->BlobExists("Team/App", digest).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(client_->BlobExists("team/../app", digest).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(client_->PushBlob("team/app?x=1", digest, "x").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(client_->GetManifest("team/app", "bad tag").status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(client_->GetBlob("team/app", "sha256:zz").status().code(),
            Status::Code::kInvalidArgument);
}

// A registry whose storage is broken answers 5xx: transient, so Unavailable.
TEST_F(RegistryTest, ServerErrorsAreUnavailable) {
  std::filesystem::remove_all(registry_.storage_dir());
  std::ofstream(registry_.storage_dir()) << "not a directory";
  RegistryOptions options;
  options.max_attempts = 3;
  options.initial_backoff_ms = 10;
  RegistryClient client(registry_.host(), options);
  PushStats stats;
  Status s = client.PushBlob("team/app", Sha256Digest("x"), "x", &stats);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kUnavailable) << s.message();
  EXPECT_TRUE(s.retryable());
  EXPECT_TRUE(Contains(s.message(), "HTTP 5")) << s.message();
  // Each failed session was retried, then the upload was begun again, both bounded.
  EXPECT_EQ(stats.uploads_restarted, 2);
  EXPECT_EQ(stats.requests_retried, 3 * 2);
}

TEST(RegistryUnreachableTest, ConnectionFailuresAreUnavailable) {
  const int port = test::FreeTcpPort();
  ASSERT_GT(port, 0);
  const std::string host = "127.0.0.1:" + std::to_string(port);
  // Connection errors are retried with back-off, a bounded number of times.
  RegistryOptions options;
  options.max_attempts = 3;
  options.initial_backoff_ms = 10;
  options.max_backoff_ms = 40;
  RegistryClient client(host, options);
  const auto begin = std::chrono::steady_clock::now();
  const std::string digest = Sha256Digest("x");
  std::vector<Status> failures = {
      client.BlobExists("team/app", digest).status(),
      client.PushBlob("team/app", digest, "x"),
      client.PutManifest("team/app", "latest", kOciManifest, "{}").status(),
      client.GetManifest("team/app", "latest").status(),
      client.GetBlob("team/app", digest).status(),
  };
  for (const Status& s : failures) {
    EXPECT_EQ(s.code(), Status::Code::kUnavailable) << s.message();
    EXPECT_TRUE(Contains(s.message(), host)) << s.message();
  }
  EXPECT_TRUE(Contains(failures[0].message(), "after 3 tries")) << failures[0].message();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(10));

  // An observer sees each try, with "error" for the answer that never came.
  ObservedRequests observed;
  options.on_request = observed.Observer();
  RegistryClient observed_client(host, options);
  EXPECT_FALSE(observed_client.BlobExists("team/app", digest).ok());
  EXPECT_EQ(observed.Take(), (std::vector<std::string>(3, "blob_head error")));
}

TEST(RegistryAuthTest, UnauthenticatedAccessIsExplained) {
  // bcrypt of "s3cret" for user "ci".
  test::RegistryServerOptions options;
  options.htpasswd = "ci:$2b$04$WYwNiYtOGMLdzSYyQEeFMuNU5x5XMn5zDH2A7xKy.JtiZRwWPE93C\n";
  RegistryServer registry;
  Status started = registry.Start(options);
  ASSERT_TRUE(started.ok()) << started.message();
  TempDir tmp;
  RegistryOptions anonymous;
  anonymous.docker_config_dir = tmp.path();  // no config.json: anonymous
  RegistryClient client(registry.host(), anonymous);
  Result<bool> exists = client.BlobExists("team/app", Sha256Digest("x"));
  ASSERT_FALSE(exists.ok());
  EXPECT_EQ(exists.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_TRUE(Contains(exists.status().message(), "registry " + registry.host()))
      << exists.status().message();
  EXPECT_TRUE(Contains(exists.status().message(), "requires a user name and password"))
      << exists.status().message();
  Status pushed = client.PushBlob("team/app", Sha256Digest("x"), "x");
  EXPECT_TRUE(Contains(pushed.message(), "manifold login " + registry.host())) << pushed.message();
}

}  // namespace
}  // namespace manifold
