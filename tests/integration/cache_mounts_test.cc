// RUN --mount=type=cache on real buildah agents (JobRunner with BuildahBuilder, each agent
// its own container storage and work dir) and a real docker-registry: what one build
// leaves in a cache mount the next build of the same repository and platform finds, and
// no other repository; the agent's disk cap counts and prunes it; a drained agent pushes
// it as an artifact and a fresh agent's build finds it; a stale or hostile artifact is
// not used. One registry for the suite.
#include "agent/cache_mounts.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include "agent/buildah_builder.h"
#include "agent/cache_mounts_artifact.h"
#include "agent/image_store.h"
#include "agent/job_runner.h"
#include "common/digest.h"
#include "common/registry.h"
#include "common/tar.h"
#include "tests/support/registry_server.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_image.h"

namespace manifold {
namespace {

namespace fs = std::filesystem;

const Platform kAmd64{"linux", "amd64", ""};

class CollectedOutput : public JobEvents {
 public:
  void Phase(const JobRef&, JobPhase) override {}
  void Output(const JobRef&, std::string_view text) override { text_.append(text); }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// One agent host: its container storage, work dir and cache mounts.
struct AgentHost {
  explicit AgentHost(const std::string& name)
      : dir(name),
        mounts(CacheMountsOptions{dir.path() + "/work/cache-mounts", 1 << 20, {}, nullptr}) {
    fs::create_directories(dir.path() + "/storage/run");
    fs::create_directories(dir.path() + "/storage/graph");
    std::ofstream(dir.path() + "/storage.conf")
        << "[storage]\ndriver = \"vfs\"\nrunroot = \"" << dir.path()
        << "/storage/run\"\ngraphroot = \"" << dir.path() << "/storage/graph\"\n";
  }
  test::TempDir dir;
  CacheMounts mounts;
};

// buildah finds its storage through the environment, which every command copies.
class StorageOf {
 public:
  explicit StorageOf(const AgentHost& agent) {
    if (const char* old = std::getenv("CONTAINERS_STORAGE_CONF")) saved_ = old;
    ::setenv("CONTAINERS_STORAGE_CONF", (agent.dir.path() + "/storage.conf").c_str(), 1);
  }
  ~StorageOf() {
    if (saved_.empty()) {
      ::unsetenv("CONTAINERS_STORAGE_CONF");
    } else {
      ::setenv("CONTAINERS_STORAGE_CONF", saved_.c_str(), 1);
    }
  }

 private:
  std::string saved_;
};

class CacheMountsBuildTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    registry_ = std::make_unique<test::RegistryServer>();
    Status started = registry_->Start();
    if (!started.ok()) {
      std::cerr << "registry: " << started.message() << "\n";
      registry_.reset();
      return;
    }
    // The context: a static busybox, from which the Dockerfiles make their own base.
    test::TempDir context("cache-mounts-context");
    fs::copy_file("/usr/bin/busybox", context.path() + "/busybox");
    std::string archive;
    Status tar = WriteTarFromDirectory(context.path(), nullptr, &archive);
    if (tar.ok()) {
      context_digest_ = Sha256Digest(archive);
      tar = RegistryClient(registry_->host()).PushBlob("contexts", context_digest_, archive);
    }
    if (!tar.ok()) {
      std::cerr << "context: " << tar.message() << "\n";
      registry_.reset();
    }
  }
  static void TearDownTestSuite() { registry_.reset(); }

  void SetUp() override {
    ASSERT_NE(registry_, nullptr) << "the suite's registry did not start";
    // A mount id of this run's own, so that nothing another run left can answer.
    mount_id_ = "run-" + std::to_string(::getpid()) + "-" + std::to_string(++runs_);
  }

  // The Dockerfile whose one RUN step runs `script` with the cache mount at /cache.
  std::string Dockerfile(const std::string& script) const {
    return "FROM scratch\nCOPY busybox /bin/busybox\nRUN --mount=type=cache,target=/cache,id=" +
           mount_id_ + " [\"/bin/busybox\", \"sh\", \"-c\", \"" + script + "\"]\n";
  }

  // Runs one job on `agent` for REGISTRY/`repository`; its output in *output.
  Result<ImageDescriptor> Build(AgentHost& agent, const std::string& repository,
                                const std::string& script, const RegistryCacheSpec& cache = {},
                                std::string* output = nullptr) {
    StorageOf storage(agent);
    SubprocessRunner runner;
    BuildahBuilder builder(runner, "buildah", /*layers=*/true,
                           BuildahSandbox{"chroot", "", "", ""});
    JobRunnerOptions options;
    options.work_dir = agent.dir.path() + "/work";
    options.cache_mounts = &agent.mounts;
    AssignMsg assign;
    assign.job = {++jobs_, 1};
    assign.build_id = assign.job.job_id;
    assign.platform = kAmd64;
    assign.context_digest = context_digest_;
    assign.context_url = "http://" + registry_->host() + "/v2/contexts/blobs/" + context_digest_;
    assign.dockerfile = Dockerfile(script);
    assign.repositories = {registry_->host() + "/" + repository};
    assign.cache = cache;
    CollectedOutput events;
    Result<ImageDescriptor> built = JobRunner(builder, options).Run(assign, events, nullptr);
    if (output != nullptr) *output = events.text();
    if (!built.ok()) std::cerr << events.text();
    return built;
  }

  static std::unique_ptr<test::RegistryServer> registry_;
  static std::string context_digest_;
  static inline uint64_t jobs_ = 0;
  static inline int runs_ = 0;
  std::string mount_id_;
};

std::unique_ptr<test::RegistryServer> CacheMountsBuildTest::registry_;
std::string CacheMountsBuildTest::context_digest_;

const char* kWrite = "echo made-here > /cache/stamp";
const char* kMustFind = "/bin/busybox grep -q made-here /cache/stamp";
const char* kMustNotFind = "! /bin/busybox test -e /cache/stamp";

TEST_F(CacheMountsBuildTest, ABuildFindsWhatTheLastBuildOfItsRepositoryLeftAndNoOtherDoes) {
  AgentHost agent("cache-mounts-agent");
  Result<ImageDescriptor> first = Build(agent, "app", kWrite);
  ASSERT_TRUE(first.ok()) << first.status().message();
  Result<ImageDescriptor> again = Build(agent, "app", kMustFind);
  EXPECT_TRUE(again.ok()) << "the next build of app lost the cache mount: "
                          << again.status().message();
  Result<ImageDescriptor> other = Build(agent, "other", kMustNotFind);
  EXPECT_TRUE(other.ok()) << "a build of another repository saw app's cache mount: "
                          << other.status().message();

  // Both are kept in the agent's work dir, and its disk cap counts and prunes them.
  std::set<std::string> in_use;
  EXPECT_EQ(agent.mounts.List(&in_use).size(), 2u);
  StorageOf storage(agent);
  SubprocessRunner runner;
  ImageStoreOptions capped;
  capped.max_bytes = 1;
  capped.min_free = {};
  capped.state_file = agent.dir.path() + "/work/image-use";
  capped.cache_mounts = &agent.mounts;
  Result<std::unique_ptr<ImageStore>> store = ImageStore::Open(runner, "buildah", capped);
  ASSERT_TRUE(store.ok()) << store.status().message();
  {
    // A held directory stays, whatever the cap.
    auto held =
        agent.mounts.Begin(registry_->host() + "/app", kAmd64, {}, [](const std::string&) {});
    (*store)->PruneNow();
    EXPECT_TRUE(fs::is_directory(held->tmp_dir()));
    EXPECT_EQ(agent.mounts.List(&in_use).size(), 1u);
  }
  (*store)->PruneNow();
  EXPECT_TRUE(agent.mounts.List(&in_use).empty());
}

TEST_F(CacheMountsBuildTest, ADrainedAgentsCacheMountsReachAFreshAgentThroughTheRegistry) {
  const std::string cache_repo = registry_->host() + "/cache/app-amd64";
  {
    AgentHost a("cache-mounts-a");
    RegistryCacheSpec cache{{cache_repo}, cache_repo, "max", 3600};
    Result<ImageDescriptor> built = Build(a, "app", kWrite, cache);
    ASSERT_TRUE(built.ok()) << built.status().message();
    a.mounts.PushAll(std::chrono::steady_clock::now() + std::chrono::seconds(60));
  }
  Result<FetchedManifest> manifest =
      RegistryClient(registry_->host()).GetManifest("cache/app-amd64", kCacheMountsTag);
  ASSERT_TRUE(manifest.ok()) << manifest.status().message();
  EXPECT_NE(manifest->bytes.find(kCacheMountsArtifactType), std::string::npos) << manifest->bytes;
  EXPECT_TRUE(ParseCacheMountsManifest(manifest->bytes).ok()) << manifest->bytes;

  AgentHost b("cache-mounts-b");  // an empty store and no cache mounts
  std::string output;
  Result<ImageDescriptor> warm =
      Build(b, "app", kMustFind, RegistryCacheSpec{{cache_repo}, "", "max", 3600}, &output);
  EXPECT_TRUE(warm.ok()) << "the fresh agent's build did not find the cache mount: "
                         << warm.status().message();
  EXPECT_NE(output.find("pulled cache mounts from " + cache_repo), std::string::npos) << output;
}

TEST_F(CacheMountsBuildTest, AStaleOrHostileArtifactIsNotUsed) {
  // Pushed as a drain would, but two hours ago; and one whose archive leaves its directory.
  test::TempDir made("cache-mounts-made");
  fs::create_directories(made.path() + "/buildah-cache/" + mount_id_);
  std::ofstream(made.path() + "/buildah-cache/" + mount_id_ + "/stamp") << "made-here";
  RegistryClient registry(registry_->host());
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  uint64_t bytes = 0;
  Status pushed =
      PushCacheMounts(registry, "cache/stale", made.path(), kAmd64, now - 7200, 1 << 20, &bytes);
  ASSERT_TRUE(pushed.ok()) << pushed.message();
  std::string hostile = test::TarWithOneFile("../../escaped", "x");
  Descriptor config = DescribeBlob(kCacheMountsConfig, "{}");
  Descriptor layer = DescribeBlob(kCacheMountsLayer, hostile);
  ASSERT_TRUE(registry.PushBlob("cache/hostile", config.digest, "{}").ok());
  ASSERT_TRUE(registry.PushBlob("cache/hostile", layer.digest, hostile).ok());
  ASSERT_TRUE(registry
                  .PutManifest("cache/hostile", kCacheMountsTag, kOciManifest,
                               MakeCacheMountsManifest(config, layer, now))
                  .ok());

  AgentHost cold("cache-mounts-cold");
  std::vector<std::string> said;
  auto use = cold.mounts.Begin(
      registry_->host() + "/app", kAmd64,
      RegistryCacheSpec{{registry_->host() + "/cache/stale", registry_->host() + "/cache/hostile"},
                        "",
                        "max",
                        3600},
      [&](const std::string& line) { said.push_back(line); });
  ASSERT_EQ(said.size(), 1u);
  EXPECT_NE(said[0].find("longer ago than the cache TTL"), std::string::npos) << said[0];
  EXPECT_NE(said[0].find("unpacking the pulled cache mounts"), std::string::npos) << said[0];
  EXPECT_TRUE(fs::is_directory(use->tmp_dir()));
  EXPECT_TRUE(fs::is_empty(use->tmp_dir())) << "the build starts with empty cache mounts";
  EXPECT_FALSE(fs::exists(cold.dir.path() + "/work/escaped"));
  EXPECT_FALSE(fs::exists(cold.dir.path() + "/work/cache-mounts/escaped"));
}

}  // namespace
}  // namespace manifold
