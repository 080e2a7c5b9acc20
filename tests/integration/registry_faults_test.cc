// Faults in the middle of a push, against a real registry behind a proxy that answers
// chosen requests itself: a transient error late in a long chunked upload, a repository
// that refuses pushes, a tag refused after others moved, and an index refused for a child
// the registry does not find. Budgets are shortened through RegistryOptions so each test
// runs in seconds.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/layout.h"
#include "common/registry.h"
#include "coordinator/merger.h"
#include "tests/support/push_image.h"
#include "tests/support/registry_proxy_fixture.h"

namespace manifold {
namespace {

using test::CannedAnswer;
using test::Contains;
using test::Count;
using test::TestImage;

// An answer of the proxy's own for every `method` request whose target has `target`.
CannedAnswer Refuse(const std::string& method, const std::string& target, int status,
                    const std::string& code) {
  CannedAnswer answer;
  answer.method = method;
  answer.target_contains = target;
  answer.times = -1;
  answer.status = status;
  answer.content_type = "application/json";
  answer.body = R"({"errors":[{"code":")" + code + R"(","message":"refused by the test"}]})";
  return answer;
}

class RegistryFaultsTest : public test::RegistryProxyFixture {
 protected:
  // A build of two images pushed to team/app, to be merged under `tags` (repository:tag,
  // through the proxy).
  BuildRecord PushedBuild(const std::vector<std::string>& tags) {
    BuildRecord build;
    build.id = 16;
    for (const std::string& tag : tags) build.spec.tags.push_back(proxy_.host() + "/" + tag);
    for (const char* arch : {"amd64", "arm64"}) {
      TestImage image = test::MakeTestImage({"linux", arch, ""}, std::string("faults ") + arch);
      Status s = test::PushTestImage(*direct_, "team/app", arch, image);
      EXPECT_TRUE(s.ok()) << s.message();
      build.jobs.push_back(test::SucceededJob(image));
    }
    return build;
  }
};

// Chunks slow enough that the upload outlasts its retry budget, then one 503: the chunks
// that made progress renewed the budget, so the upload resumes and completes.
TEST_F(RegistryFaultsTest, AChunkThatMadeProgressRenewsTheUploadsRetryBudget) {
  TestImage image = test::MakeTestImage({"linux", "amd64", ""}, std::string(2 << 20, 'x'));
  const std::string dir = tmp_.path() + "/layout";
  ASSERT_TRUE(test::WriteTestLayout(dir, {{&image, "latest"}}).ok());
  Result<OciLayoutImage> layout = OpenLayoutImage(dir, "latest");
  ASSERT_TRUE(layout.ok()) << layout.status().message();
  CannedAnswer slow;
  slow.method = "PATCH";
  slow.times = 5;
  slow.forward = true;
  slow.delay = std::chrono::milliseconds(250);
  proxy_.Answer(slow);
  CannedAnswer unavailable = Refuse("PATCH", "", 503, "UNAVAILABLE");
  unavailable.times = 1;
  proxy_.Answer(unavailable);

  RegistryOptions options = Options();
  options.chunked_threshold_bytes = 256 << 10;
  options.chunk_bytes = 256 << 10;
  options.retry_budget_ms = 1000;  // the five slow chunks take 1250 ms
  options.initial_backoff_ms = 20;
  options.max_backoff_ms = 50;
  RegistryClient client(proxy_.host(), options);
  PushStats stats;
  Result<Descriptor> pushed = client.PushLayout(*layout, "team/slow", &stats);
  ASSERT_TRUE(pushed.ok()) << pushed.status().message();
  EXPECT_EQ(stats.uploads_resumed, 1);
  EXPECT_EQ(stats.uploads_restarted, 0);
  Result<std::string> stored = direct_->GetBlob("team/slow", image.layers[0].digest);
  ASSERT_TRUE(stored.ok()) << stored.status().message();
  EXPECT_EQ(*stored, image.layer_bytes[0]);
}

// One repository of the build's tags refuses pushes: its refusal is found before any tag
// moves, and the error names it.
TEST_F(RegistryFaultsTest, ARepositoryRefusingPushesMovesNoTag) {
  BuildRecord build = PushedBuild({"team/app:v1", "team/app:latest", "mirror/app:v1"});
  proxy_.Answer(Refuse("POST", "/v2/mirror/app/blobs/uploads/", 403, "DENIED"));
  proxy_.Answer(Refuse("PUT", "/v2/mirror/app/manifests/", 403, "DENIED"));
  Result<PushedIndex> pushed = Merger().MergeAndPushIndex(build);
  ASSERT_FALSE(pushed.ok());
  const std::string& message = pushed.status().message();
  EXPECT_TRUE(Contains(message, "no tag was moved")) << message;
  EXPECT_TRUE(Contains(message, "check push access to mirror/app")) << message;
  EXPECT_TRUE(Contains(message, "HTTP 403")) << message;
  EXPECT_FALSE(Tagged("team/app", "v1"));
  EXPECT_FALSE(Tagged("team/app", "latest"));
  EXPECT_FALSE(Tagged("mirror/app", "v1"));
  // The sessions opened to check access are cancelled.
  EXPECT_EQ(Count(proxy_.requests(), "DELETE", "/v2/team/app/blobs/uploads/"), 1);
}

// The last tag's PUT alone fails: the error lists the tags that moved and the one that
// did not.
TEST_F(RegistryFaultsTest, ATagFailingAfterOthersMovedIsNamedWithThem) {
  BuildRecord build = PushedBuild({"team/app:v1", "team/app:v2", "team/app:v3"});
  proxy_.Answer(Refuse("PUT", "/v2/team/app/manifests/v3", 403, "DENIED"));
  Result<PushedIndex> pushed = Merger().MergeAndPushIndex(build);
  ASSERT_FALSE(pushed.ok());
  const std::string& message = pushed.status().message();
  const std::string at = proxy_.host() + "/team/app:";
  EXPECT_TRUE(
      Contains(message, "the index was pushed to " + at + "v1, " + at + "v2; not to " + at + "v3"))
      << message;
  EXPECT_TRUE(Contains(message, "HTTP 403")) << message;
  EXPECT_TRUE(Tagged("team/app", "v1"));
  EXPECT_TRUE(Tagged("team/app", "v2"));
  EXPECT_FALSE(Tagged("team/app", "v3"));
}

// The registry refuses the index once for a child it does not find (another push of it
// raced): the children are checked again and the index is put again.
TEST_F(RegistryFaultsTest, AnIndexRefusedForAMissingChildIsPutAgain) {
  BuildRecord build = PushedBuild({"team/app:v1"});
  CannedAnswer lost = Refuse("PUT", "/v2/team/app/manifests/v1", 400, "MANIFEST_BLOB_UNKNOWN");
  lost.times = 1;
  proxy_.Answer(lost);
  Result<PushedIndex> pushed = Merger().MergeAndPushIndex(build);
  ASSERT_TRUE(pushed.ok()) << pushed.status().message();
  EXPECT_TRUE(Tagged("team/app", "v1"));
  EXPECT_EQ(Count(proxy_.requests(), "PUT", "/v2/team/app/manifests/v1"), 2);
  EXPECT_EQ(Count(proxy_.requests(), "HEAD", "/v2/team/app/manifests/sha256:"), 4);
}

}  // namespace
}  // namespace manifold
