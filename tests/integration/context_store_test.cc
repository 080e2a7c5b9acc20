// Build contexts on a real farm's coordinator: a context cut under its name is found and
// uploaded again by the real CLI, collection keeps what a queued build needs, a mismatched
// upload leaves nothing, and a large chunked upload is not held in the coordinator's
// memory. One farm (one amd64 agent) for the suite.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/digest.h"
#include "common/tar.h"
#include "tests/support/chunked_request.h"
#include "tests/support/farm.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace manifold::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class ContextStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    FarmOptions options;
    options.agents = {"amd64-1:linux/amd64"};
    // Short enough that a pass comes every 5 s; the tests age files by hand rather than
    // wait for it.
    options.env = {{"MANIFOLD_CONTEXT_MAX_AGE", "20"}};
    farm_ = StartSuiteFarm(options);
  }
  static void TearDownTestSuite() { farm_.reset(); }

  void SetUp() override { ASSERT_NE(farm_, nullptr) << "the farm did not come up"; }
  void TearDown() override {
    if (HasFailure() && farm_)
      std::cerr << "---- coordinator ----\n" << farm_->LogTail("coordinator");
  }

  static std::string ContextsDir() { return farm_->dir() + "/farm/coordinator/contexts"; }
  static std::string FileOf(const std::string& digest) {
    return ContextsDir() + "/" + DigestHex(digest) + ".tar";
  }
  static std::vector<std::string> Files() {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(ContextsDir())) {
      names.push_back(entry.path().filename().string());
    }
    return names;
  }

  static int Put(const std::string& digest, const std::string& body) {
    Result<HttpResponse> put = farm_->Api("PUT", "/v1/contexts/" + digest, body);
    return put.ok() ? put->status : 0;
  }

  // Unused for an hour, as far as the collector can tell (without a request, which would
  // count as a use).
  static void Age(const std::string& digest) {
    timespec times[2];
    clock_gettime(CLOCK_REALTIME, &times[0]);
    times[0].tv_sec -= 3600;
    times[1] = times[0];
    ASSERT_EQ(utimensat(AT_FDCWD, FileOf(digest).c_str(), times, 0), 0) << FileOf(digest);
  }

  // The coordinator's peak resident memory so far (VmHWM), in bytes.
  static uint64_t PeakRss() {
    std::ifstream status("/proc/" + std::to_string(farm_->Pid("coordinator")) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
    }
    return 0;
  }

  static std::unique_ptr<Farm> farm_;
};

std::unique_ptr<Farm> ContextStoreTest::farm_;

TEST_F(ContextStoreTest, ATruncatedContextIsFoundAndUploadedAgainByTheCli) {
  TempDir context("manifold-truncated");
  std::ofstream(context.path() + "/Dockerfile") << "FROM busybox\nCOPY data.txt /data.txt\n";
  std::ofstream(context.path() + "/data.txt") << std::string(64 << 10, 'd');
  // The archive the CLI packs (no .dockerignore), stored and then cut under its name as a
  // power loss before the data reached the disk would leave it.
  std::string archive;
  ASSERT_TRUE(WriteTarFromDirectory(context.path(), {}, &archive).ok());
  std::string digest = Sha256Digest(archive);
  ASSERT_EQ(Put(digest, archive), 201);
  fs::resize_file(FileOf(digest), archive.size() / 2);

  CommandResult build = farm_->Manifold({"build", "--platform", "linux/amd64", "-t",
                                         farm_->registry() + "/truncated:latest", "--progress",
                                         "plain", context.path()});
  EXPECT_EQ(build.exit_code, 0) << build.output;
  EXPECT_NE(build.output.find("context uploaded"), std::string::npos) << build.output;
  EXPECT_EQ(fs::file_size(FileOf(digest)), archive.size());
  // The collector's next pass reports it.
  const std::string kCorrupt = "manifold_contexts_deleted_total{reason=\"corrupt\"} 1\n";
  std::string metrics;
  EXPECT_TRUE(WaitFor(
      [&] {
        Result<std::string> fetched = farm_->Metrics("coordinator");
        metrics = fetched.ok() ? *fetched : fetched.status().message();
        return metrics.find(kCorrupt) != std::string::npos;
      },
      std::chrono::seconds(15)))
      << metrics;
}

TEST_F(ContextStoreTest, CollectionNeverDeletesAContextAQueuedBuildNeeds) {
  std::string needed = "a context a queued build needs";
  std::string unneeded = "a context no build needs";
  ASSERT_EQ(Put(Sha256Digest(needed), needed), 201);
  ASSERT_EQ(Put(Sha256Digest(unneeded), unneeded), 201);
  // No agent serves s390x: the build stays queued.
  json request = {{"platforms", {"linux/s390x"}},
                  {"tags", {farm_->registry() + "/kept:latest"}},
                  {"context", Sha256Digest(needed)},
                  {"dockerfile", "FROM busybox\n"}};
  Result<HttpResponse> submitted = farm_->Api("POST", "/v1/builds", request.dump());
  ASSERT_TRUE(submitted.ok());
  ASSERT_EQ(submitted->status, 201) << submitted->body;
  uint64_t id = json::parse(submitted->body).value("id", uint64_t{0});
  Age(Sha256Digest(needed));
  Age(Sha256Digest(unneeded));

  EXPECT_TRUE(WaitFor([&] { return !fs::exists(FileOf(Sha256Digest(unneeded))); },
                      std::chrono::seconds(30)))
      << "the unneeded context was not collected";
  EXPECT_TRUE(fs::exists(FileOf(Sha256Digest(needed))));
  Result<HttpResponse> head = farm_->Api("HEAD", "/v1/contexts/" + Sha256Digest(needed));
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->status, 200);
  ASSERT_EQ(farm_->GetBuild(id)->value("state", ""), "queued");
  ASSERT_TRUE(farm_->Api("POST", "/v1/builds/" + std::to_string(id) + "/cancel").ok());
}

TEST_F(ContextStoreTest, AMismatchedUploadIsRefusedAndLeavesNothing) {
  std::string digest = Sha256Digest("what the client meant to send");
  Result<HttpResponse> put = farm_->Api("PUT", "/v1/contexts/" + digest, "what arrived");
  ASSERT_TRUE(put.ok());
  EXPECT_EQ(put->status, 400);
  EXPECT_NE(put->body.find("upload it again"), std::string::npos) << put->body;
  for (const std::string& name : Files()) {
    EXPECT_EQ(name.find(".tmp."), std::string::npos) << name;
    EXPECT_NE(name, DigestHex(digest) + ".tar");
  }
  EXPECT_EQ(farm_->Api("HEAD", "/v1/contexts/" + digest)->status, 404);
}

TEST_F(ContextStoreTest, ALargeChunkedUploadIsNotHeldInTheCoordinatorsMemory) {
  constexpr uint64_t kBody = 256ull << 20;
  std::string body(kBody, '\0');
  for (uint64_t i = 0; i < kBody; i += 4096) body[i] = static_cast<char>(i >> 12);
  std::string digest = Sha256Digest(body);
  int port = std::stoi(farm_->server_url().substr(farm_->server_url().rfind(':') + 1));
  uint64_t before = PeakRss();
  ASSERT_GT(before, 0u);
  Result<ChunkedAnswer> answer =
      SendChunked(port, "PUT", "/v1/contexts/" + digest, {{"Content-Type", "application/x-tar"}},
                  body, 1 << 20);
  ASSERT_TRUE(answer.ok()) << answer.status().message();
  EXPECT_EQ(answer->status, 201) << answer->body;
  uint64_t growth = PeakRss() - before;
  // A bound, not a timing: far below the body's size (the old code held all of it).
  EXPECT_LT(growth, kBody / 8) << "the coordinator's peak RSS grew by " << growth << " bytes";
  EXPECT_EQ(fs::file_size(FileOf(digest)), kBody);
}

}  // namespace
}  // namespace manifold::test
