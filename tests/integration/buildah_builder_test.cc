// BuildahBuilder against the real buildah: builds small busybox images from scratch into
// a private vfs container store under the test's temp dir, so nothing depends on (or
// changes) the host's images.
#include "agent/buildah_builder.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agent/command_runner.h"
#include "common/digest.h"
#include "common/platform.h"
#include "tests/support/builder_run.h"
#include "tests/support/ports.h"
#include "tests/support/wait.h"

namespace manifold {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

const Platform kAmd64{"linux", "amd64", ""};
const Platform kArm64{"linux", "arm64", ""};

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void WriteFile(const fs::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
}

// The machine an ELF binary is built for, from its header: "x86_64", "aarch64" or "".
std::string ElfMachine(const fs::path& path) {
  std::string header = ReadFile(path).substr(0, 20);
  if (header.size() < 20 || header.compare(0, 4,
                                           "\x7f"
                                           "ELF") != 0) {
    return "";
  }
  int machine = static_cast<unsigned char>(header[18]) |
                (static_cast<unsigned char>(header[19]) << 8);  // little-endian targets only
  if (machine == 62) return "x86_64";
  if (machine == 183) return "aarch64";
  return "";
}

using test::BuildOutcome;
using test::BuildWithWatchdog;

// The one image manifest of an OCI layout, checked against its digest, and its config.
struct LayoutImage {
  nlohmann::json manifest;
  nlohmann::json config;
};

LayoutImage ReadSingleImageLayout(const fs::path& layout) {
  LayoutImage image;
  EXPECT_TRUE(fs::is_regular_file(layout / "oci-layout"));
  nlohmann::json marker = nlohmann::json::parse(ReadFile(layout / "oci-layout"), nullptr, false);
  EXPECT_EQ(marker.value("imageLayoutVersion", ""), "1.0.0");

  nlohmann::json index = nlohmann::json::parse(ReadFile(layout / "index.json"), nullptr, false);
  if (!index.is_object() || !index["manifests"].is_array()) {
    ADD_FAILURE() << "index.json is missing or malformed";
    return image;
  }
  if (index["manifests"].size() != 1) {
    ADD_FAILURE() << "expected exactly one manifest in index.json: " << index.dump();
    return image;
  }
  const nlohmann::json& descriptor = index["manifests"][0];
  EXPECT_EQ(descriptor.value("mediaType", ""), "application/vnd.oci.image.manifest.v1+json");
  std::string digest = descriptor.value("digest", "");
  if (!IsValidDigest(digest)) {
    ADD_FAILURE() << "bad manifest digest in index.json: " << digest;
    return image;
  }
  std::string manifest_bytes = ReadFile(layout / "blobs" / "sha256" / DigestHex(digest));
  EXPECT_EQ(Sha256Digest(manifest_bytes), digest) << "manifest blob does not match its digest";
  EXPECT_EQ(descriptor.value("size", -1), static_cast<int64_t>(manifest_bytes.size()));
  image.manifest = nlohmann::json::parse(manifest_bytes, nullptr, false);
  if (!image.manifest.is_object()) {
    ADD_FAILURE() << "manifest blob is not JSON";
    return image;
  }
  std::string config_digest = image.manifest["config"].value("digest", "");
  if (!IsValidDigest(config_digest)) {
    ADD_FAILURE() << "bad config digest in manifest: " << config_digest;
    return image;
  }
  std::string config_bytes = ReadFile(layout / "blobs" / "sha256" / DigestHex(config_digest));
  EXPECT_EQ(Sha256Digest(config_bytes), config_digest) << "config blob does not match its digest";
  image.config = nlohmann::json::parse(config_bytes, nullptr, false);
  EXPECT_TRUE(image.config.is_object()) << "config blob is not JSON";
  return image;
}

class BuildahBuilderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "buildah_builder_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    fs::create_directories(root_ / "storage" / "run");
    fs::create_directories(root_ / "storage" / "graph");
    fs::create_directories(root_ / "context");
    fs::create_directories(root_ / "dockerfiles");
    // A private vfs store: vfs needs no kernel overlay support and keeps every file of the
    // test under root_.
    WriteFile(root_ / "storage.conf",
              "[storage]\ndriver = \"vfs\"\nrunroot = \"" + (root_ / "storage" / "run").string() +
                  "\"\ngraphroot = \"" + (root_ / "storage" / "graph").string() + "\"\n");
    if (const char* old = ::getenv("CONTAINERS_STORAGE_CONF")) saved_storage_conf_ = old;
    ::setenv("CONTAINERS_STORAGE_CONF", (root_ / "storage.conf").c_str(), 1);

    Status available = BuildahBuilder::CheckAvailable(runner_);
    ASSERT_TRUE(available.ok()) << available.message();
  }

  void TearDown() override {
    if (saved_storage_conf_) {
      ::setenv("CONTAINERS_STORAGE_CONF", saved_storage_conf_->c_str(), 1);
    } else {
      ::unsetenv("CONTAINERS_STORAGE_CONF");
    }
    std::error_code ec;
    if (!root_.empty()) fs::remove_all(root_, ec);
  }

  // A context with `busybox` in it and a Dockerfile outside it (as the agent has them).
  BuildRequest MakeRequest(const Platform& platform, const fs::path& busybox,
                           const std::string& dockerfile, const std::string& name) {
    fs::copy_file(busybox, root_ / "context" / "busybox", fs::copy_options::overwrite_existing);
    fs::path dockerfile_path = root_ / "dockerfiles" / (name + ".Dockerfile");
    WriteFile(dockerfile_path, dockerfile);
    BuildRequest request;
    request.platform = platform;
    request.context_dir = (root_ / "context").string();
    request.dockerfile_path = dockerfile_path.string();
    request.image_name = "manifold-test-" + name;
    request.layout_dir = (root_ / ("layout-" + name)).string();
    return request;
  }

  // Local image names in the private store.
  std::string ListImages() {
    std::string out;
    Result<int> code = runner_.Run(
        {{"buildah", "images", "--noheading"}, {}, ""},
        [&](std::string_view chunk) { out.append(chunk); }, nullptr);
    EXPECT_TRUE(code.ok() && *code == 0) << out;
    return out;
  }

  // Skips unless /bin/busybox runs natively as x86-64 (the amd64 tests copy it into images).
  std::optional<fs::path> HostAmd64Busybox() {
    for (const char* candidate : {"/bin/busybox", "/usr/bin/busybox"}) {
      if (fs::exists(candidate) && ElfMachine(candidate) == "x86_64") return fs::path(candidate);
    }
    return std::nullopt;
  }

  // A static arm64 busybox: ${MANIFOLD_CACHE_DIR}/busybox-arm64 if present, else extracted
  // from the busybox-static_*_arm64.deb that ops/base-image.sh --fetch-only caches there.
  // Sets *why when there is none.
  std::optional<fs::path> Arm64Busybox(std::string* why) {
    const char* env = ::getenv("MANIFOLD_CACHE_DIR");
    fs::path cache = (env != nullptr && *env != '\0') ? env : "/var/cache/manifold";
    std::error_code ec;
    if (fs::is_regular_file(cache / "busybox-arm64", ec)) return cache / "busybox-arm64";
    std::vector<fs::path> debs;
    for (const auto& entry : fs::directory_iterator(cache, ec)) {
      std::string name = entry.path().filename();
      if (name.starts_with("busybox-static_") && name.ends_with("_arm64.deb")) {
        debs.push_back(entry.path());
      }
    }
    if (debs.empty()) {
      *why = "no arm64 busybox in " + cache.string() +
             " (neither busybox-arm64 nor busybox-static_*_arm64.deb); run "
             "`ops/base-image.sh --fetch-only` to cache it";
      return std::nullopt;
    }
    std::sort(debs.begin(), debs.end());
    fs::path extract = root_ / "busybox-arm64-deb";
    std::string out;
    Result<int> code = runner_.Run(
        {{"dpkg-deb", "-x", debs.back().string(), extract.string()}, {}, ""},
        [&](std::string_view chunk) { out.append(chunk); }, nullptr);
    if (!code.ok() || *code != 0 || !fs::is_regular_file(extract / "bin" / "busybox")) {
      ADD_FAILURE() << "cannot extract bin/busybox from " << debs.back() << ": "
                    << (code.ok() ? out : code.status().message());
      *why = "extraction failed";
      return std::nullopt;
    }
    return extract / "bin" / "busybox";
  }

  fs::path root_;
  std::optional<std::string> saved_storage_conf_;
  SubprocessRunner runner_;
};

// The busybox base plus one stage that must not be built when the target is "main".
std::string GreetingDockerfile() {
  return "FROM scratch AS main\n"
         "COPY busybox /bin/busybox\n"
         "RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"
         "ARG GREETING\n"
         "RUN uname -m > /arch && echo \"greeting: $GREETING from $(cat /arch)\"\n"
         "\n"
         "FROM main AS broken\n"
         "RUN exit 9\n";
}

TEST_F(BuildahBuilderTest, BuildsAmd64ImageIntoOciLayout) {
  std::optional<fs::path> busybox = HostAmd64Busybox();
  if (!busybox) GTEST_SKIP() << "no x86-64 static busybox on this host (package busybox-static)";
  BuildahBuilder builder(runner_);
  EXPECT_EQ(builder.Name(), "buildah");
  BuildRequest request = MakeRequest(kAmd64, *busybox, GreetingDockerfile(), "amd64");
  request.build_args = {{"GREETING", "hello-manifold"}};
  request.target = "main";

  std::atomic<bool> cancel{false};
  BuildOutcome outcome = BuildWithWatchdog(builder, request, seconds(300), cancel);
  ASSERT_TRUE(outcome.status.ok()) << outcome.status.message() << "\nlog:\n" << outcome.log;

  // The text the RUN step printed proves the build arg reached it and it ran as x86_64;
  // the Dockerfile's own text (echoed in buildah's STEP lines) has neither value.
  EXPECT_NE(outcome.log.find("greeting: hello-manifold from x86_64"), std::string::npos)
      << outcome.log;
  EXPECT_NE(outcome.log.find("manifold: buildah bud --isolation oci --platform linux/amd64"),
            std::string::npos)
      << outcome.log;
  EXPECT_NE(outcome.log.find("manifold: buildah push manifold-test-amd64 oci:"), std::string::npos)
      << outcome.log;
  EXPECT_NE(outcome.log.find("manifold: buildah rmi manifold-test-amd64"), std::string::npos)
      << outcome.log;

  // Success itself shows --target reached buildah: the "broken" stage would exit 9.
  LayoutImage image = ReadSingleImageLayout(request.layout_dir);
  EXPECT_EQ(image.config.value("architecture", ""), "amd64");
  EXPECT_EQ(image.config.value("os", ""), "linux");
  EXPECT_FALSE(image.manifest["layers"].empty());

  // The local copy was removed once the layout held the image.
  EXPECT_EQ(ListImages().find("manifold-test-amd64"), std::string::npos);
}

TEST_F(BuildahBuilderTest, FailingRunStepIsNotRetryableAndNamesThePlatform) {
  std::optional<fs::path> busybox = HostAmd64Busybox();
  if (!busybox) GTEST_SKIP() << "no x86-64 static busybox on this host (package busybox-static)";
  BuildahBuilder builder(runner_);
  BuildRequest request = MakeRequest(kAmd64, *busybox,
                                     "FROM scratch\n"
                                     "COPY busybox /bin/busybox\n"
                                     "RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"
                                     "RUN echo about-to-fail && exit 3\n",
                                     "failing");
  std::atomic<bool> cancel{false};
  BuildOutcome outcome = BuildWithWatchdog(builder, request, seconds(300), cancel);
  ASSERT_FALSE(outcome.status.ok()) << outcome.log;
  EXPECT_EQ(outcome.status.code(), Status::Code::kInternal) << outcome.status.message();
  EXPECT_FALSE(outcome.status.retryable());
  const std::string& message = outcome.status.message();
  EXPECT_NE(message.find("buildah bud for linux/amd64 exited with status"), std::string::npos)
      << message;
  EXPECT_NE(outcome.log.find("about-to-fail"), std::string::npos) << outcome.log;
  EXPECT_FALSE(fs::exists(fs::path(request.layout_dir) / "index.json"));
  EXPECT_EQ(outcome.log.find("manifold: buildah push"), std::string::npos)
      << "push ran after a failed build";
}

// No internet registry here, as on an agent host without registries.conf: the FROM image's
// registry (a loopback port nothing listens on) cannot be reached.
TEST_F(BuildahBuilderTest, AnUnreachableFromRegistrySaysToGiveARegistriesConf) {
  const std::string registry = "127.0.0.1:" + std::to_string(test::FreeTcpPort());
  BuildahBuilder builder(runner_);
  BuildRequest request = MakeRequest(kAmd64, root_ / "storage.conf",
                                     "FROM " + registry + "/library/busybox\n", "unreachable");
  std::atomic<bool> cancel{false};
  BuildOutcome outcome = BuildWithWatchdog(builder, request, seconds(120), cancel);
  ASSERT_FALSE(outcome.status.ok()) << outcome.log;
  EXPECT_FALSE(outcome.status.retryable());
  EXPECT_NE(outcome.status.message().find(
                ". This agent cannot reach the registry " + registry +
                " to pull a FROM image: give its buildah a registries.conf "
                "(CONTAINERS_REGISTRIES_CONF) with a [[registry.mirror]] this host can reach"),
            std::string::npos)
      << outcome.status.message();
}

TEST_F(BuildahBuilderTest, CancelStopsARunningBuild) {
  std::optional<fs::path> busybox = HostAmd64Busybox();
  if (!busybox) GTEST_SKIP() << "no x86-64 static busybox on this host (package busybox-static)";
  BuildahBuilder builder(runner_);
  // "sleeping-42" appears only when the RUN step runs: buildah's STEP line shows $((6*7)).
  BuildRequest request = MakeRequest(kAmd64, *busybox,
                                     "FROM scratch\n"
                                     "COPY busybox /bin/busybox\n"
                                     "RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"
                                     "RUN echo sleeping-$((6*7)) && sleep 37\n",
                                     "cancel");
  test::CanceledBuild canceled =
      test::CancelOnceLogShows(builder, request, "sleeping-42", seconds(120));
  const BuildOutcome& outcome = canceled.outcome;
  ASSERT_TRUE(canceled.reached) << "the build never reached its RUN sleep step; log:\n"
                                << outcome.log;
  EXPECT_EQ(outcome.status.code(), Status::Code::kCanceled) << outcome.status.message();
  EXPECT_LT(canceled.cancel_took, seconds(5));
  EXPECT_FALSE(fs::exists(fs::path(request.layout_dir) / "index.json"));

  // The RUN step's process was in the build's process group and must be gone too.
  EXPECT_TRUE(test::WaitFor(
      [] {
        return !test::ProcessRunning({"sleep", "37"});
      },
      seconds(5)))
      << "the RUN step's sleep survived";
}

TEST_F(BuildahBuilderTest, BuildsArm64ImageUnderEmulation) {
  std::string binfmt = "/proc/sys/fs/binfmt_misc/" + QemuBinfmtName(kArm64);
  if (ReadFile(binfmt).rfind("enabled", 0) != 0) {
    GTEST_SKIP() << "arm64 RUN steps need QEMU: " << binfmt
                 << " is not enabled (run ops/binfmt.sh as root)";
  }
  std::string why;
  std::optional<fs::path> busybox = Arm64Busybox(&why);
  if (!busybox) GTEST_SKIP() << why;
  ASSERT_EQ(ElfMachine(*busybox), "aarch64") << *busybox << " is not an arm64 binary";

  BuildahBuilder builder(runner_);
  BuildRequest request = MakeRequest(kArm64, *busybox, GreetingDockerfile(), "arm64");
  request.build_args = {{"GREETING", "hello-arm"}};
  request.target = "main";
  std::atomic<bool> cancel{false};
  BuildOutcome outcome = BuildWithWatchdog(builder, request, seconds(300), cancel);
  ASSERT_TRUE(outcome.status.ok()) << outcome.status.message() << "\nlog:\n" << outcome.log;
  EXPECT_NE(outcome.log.find("greeting: hello-arm from aarch64"), std::string::npos) << outcome.log;
  LayoutImage image = ReadSingleImageLayout(request.layout_dir);
  EXPECT_EQ(image.config.value("architecture", ""), "arm64");
  EXPECT_EQ(image.config.value("os", ""), "linux");
}

// buildah sets buildx's automatic platform args itself, per --platform and with the
// variant; a Dockerfile without RUN steps shows them for foreign platforms without QEMU.
// Labels land in the config of the layout that is pushed (annotations are the job runner's).
TEST_F(BuildahBuilderTest, SetsPlatformArgsAndLabelsForEachPlatform) {
  const std::string dockerfile =
      "FROM scratch\n"
      "ARG TARGETPLATFORM\nARG TARGETOS\nARG TARGETARCH\nARG TARGETVARIANT\n"
      "ARG BUILDPLATFORM\nARG BUILDOS\nARG BUILDARCH\nARG BUILDVARIANT\n"
      "LABEL tp=$TARGETPLATFORM tos=$TARGETOS ta=$TARGETARCH tv=\"$TARGETVARIANT\" "
      "bp=$BUILDPLATFORM bos=$BUILDOS ba=$BUILDARCH bv=\"$BUILDVARIANT\"\n"
      "LABEL origin=dockerfile\n"
      "COPY busybox /payload\n";
  struct Case {
    std::string given;  // as on the command line; ParsePlatform normalises it as buildx
    std::string target_platform, arch, variant;
  };
  const std::vector<Case> cases = {{"linux/amd64", "linux/amd64", "amd64", ""},
                                   {"linux/arm64/v8", "linux/arm64", "arm64", ""},
                                   {"linux/arm/v7", "linux/arm/v7", "arm", "v7"},
                                   {"linux/arm", "linux/arm/v7", "arm", "v7"}};
  WriteFile(root_ / "payload", "not a binary: nothing runs");
  BuildahBuilder builder(runner_);
  int n = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.given);
    Result<Platform> platform = ParsePlatform(c.given);
    ASSERT_TRUE(platform.ok()) << platform.status().message();
    BuildRequest request =
        MakeRequest(*platform, root_ / "payload", dockerfile, "args" + std::to_string(n++));
    request.labels = {{"org.example.team", "builds"}, {"origin", "command line"}};
    request.no_cache = true;
    request.pull = true;
    std::atomic<bool> cancel{false};
    BuildOutcome outcome = BuildWithWatchdog(builder, request, seconds(120), cancel);
    ASSERT_TRUE(outcome.status.ok()) << outcome.status.message() << "\nlog:\n" << outcome.log;
    EXPECT_NE(outcome.log.find(" --no-cache "), std::string::npos) << outcome.log;
    EXPECT_NE(outcome.log.find(" --pull=always "), std::string::npos) << outcome.log;

    LayoutImage image = ReadSingleImageLayout(request.layout_dir);
    const nlohmann::json& labels = image.config["config"]["Labels"];
    EXPECT_EQ(labels.value("tp", ""), c.target_platform) << labels.dump();
    EXPECT_EQ(labels.value("tos", ""), "linux");
    EXPECT_EQ(labels.value("ta", ""), c.arch);
    EXPECT_EQ(labels.value("tv", "missing"), c.variant);
    EXPECT_EQ(labels.value("bp", ""), "linux/amd64");  // this host builds, natively
    EXPECT_EQ(labels.value("bos", ""), "linux");
    EXPECT_EQ(labels.value("ba", ""), "amd64");
    EXPECT_EQ(labels.value("bv", "missing"), "");
    EXPECT_EQ(labels.value("org.example.team", ""), "builds");
    EXPECT_EQ(image.config.value("architecture", ""), c.arch);
    EXPECT_EQ(image.config.value("variant", ""), c.variant);
    // A --label wins over the Dockerfile's own LABEL, as in docker build.
    EXPECT_EQ(labels.value("origin", ""), "command line");
  }
}

TEST_F(BuildahBuilderTest, RefusesANonEmptyLayoutDir) {
  BuildahBuilder builder(runner_);
  WriteFile(root_ / "not-a-binary", "a file, not a context directory");
  BuildRequest request = MakeRequest(kAmd64, root_ / "not-a-binary",
                                     "FROM scratch\nCOPY busybox /bin/busybox\n", "nonempty");
  fs::create_directories(request.layout_dir);
  WriteFile(fs::path(request.layout_dir) / "index.json", "{}");
  std::atomic<bool> cancel{false};
  BuildOutcome outcome = BuildWithWatchdog(builder, request, seconds(60), cancel);
  ASSERT_FALSE(outcome.status.ok());
  EXPECT_EQ(outcome.status.code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(outcome.status.message().find(request.layout_dir), std::string::npos)
      << outcome.status.message();
  EXPECT_TRUE(outcome.log.empty()) << "buildah ran for an invalid request:\n" << outcome.log;
}

TEST_F(BuildahBuilderTest, CheckAvailableExplainsAMissingBuildah) {
  std::string missing = (root_ / "no-buildah-here" / "buildah").string();
  Status status = BuildahBuilder::CheckAvailable(runner_, missing);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(status.message().find(missing), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("install buildah 1.28"), std::string::npos) << status.message();
}

}  // namespace
}  // namespace manifold
