// Writes the seed corpora of the fuzz targets into tests/fuzz/<target>/ from real values:
// every agent-protocol message encoded by the real encoder, references and platforms in
// the spellings users write, manifests and indexes as builders and BuildIndex produce
// them, and context archives written by WriteTarFromDirectory (plus the hostile shapes
// the extractor must refuse), and build request bodies, minimal to full (plus a few the API
// must refuse). Run it after the protocol or a format changes:
//   make_fuzz_seeds <repo>/tests/fuzz
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/docker_config.h"
#include "common/oci.h"
#include "common/tar.h"
#include "common/wire.h"

namespace fs = std::filesystem;
using namespace manifold;

namespace {

void Write(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

Platform P(const char* text) { return *ParsePlatform(text); }

void WireSeeds(const fs::path& dir) {
  const std::string digest = Sha256Digest("manifold");
  HelloMsg hello;
  hello.agent_id = "amd64-1";
  hello.version = "0.1.0";
  hello.hostname = "build-host";
  hello.platforms = {{P("linux/amd64"), false}, {P("linux/arm64"), true}};
  hello.slots = 2;
  hello.labels = {{"zone", "a"}};
  hello.running_jobs = {{7, 2}};
  std::map<std::string, AgentMessage> agent = {
      {"hello", hello},
      {"heartbeat", HeartbeatMsg{{{7, 2}, {8, 1}}}},
      {"job_update", JobUpdateMsg{{7, 2}, JobPhase::kBuilding}},
      {"log_chunk", LogChunkMsg{{7, 2}, 3, "STEP 1/2: FROM busybox\n"}},
      {"result_image",
       JobResultMsg{{7, 2}, true, {std::string(kOciManifest), digest, 529}, "", false}},
      {"result_failure", JobResultMsg{{7, 2}, false, {}, "RUN exited with 1", true}},
      {"draining", DrainingMsg{}},
      {"goodbye", GoodbyeMsg{}},
  };
  // The first byte of an input picks the frame's alignment (see wire_fuzzer.cc).
  for (const auto& [name, message] : agent) {
    Write(dir, "agent_" + name, std::string(1, '\0') + EncodeAgentMessage(message));
  }
  AssignMsg assign;
  assign.job = {7, 2};
  assign.build_id = 3;
  assign.platform = P("linux/arm/v7");
  assign.context_digest = digest;
  assign.context_url = "http://127.0.0.1:7080/v1/contexts/" + digest;
  assign.dockerfile = "FROM busybox\nRUN uname -m\n";
  assign.dockerfile_path = "Dockerfile";
  assign.build_args = {{"VERSION", "1.2"}};
  assign.target = "final";
  assign.repositories = {"127.0.0.1:5000/team/app"};
  std::map<std::string, CoordinatorMessage> coordinator = {
      {"welcome", WelcomeMsg{"0123456789abcdef", 2000, {}, 0}},
      {"assign", assign},
      {"cancel", CancelMsg{{7, 2}}},
      {"ack", AckMsg{{7, 2}}},
      {"reject", RejectMsg{"unknown agent session", false}},
      {"drain", DrainMsg{}},
      {"log_flow", LogFlowMsg{true}},
  };
  for (const auto& [name, message] : coordinator) {
    Write(dir, "coordinator_" + name, std::string(1, '\0') + EncodeCoordinatorMessage(message));
  }
}

void TextSeeds(const fs::path& dir, const std::vector<std::string>& texts) {
  for (size_t i = 0; i < texts.size(); ++i) Write(dir, "seed_" + std::to_string(i), texts[i]);
}

void OciSeeds(const fs::path& dir) {
  const std::string config = Sha256Digest("config");
  const std::string layer = Sha256Digest("layer");
  Write(
      dir, "oci_manifest",
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
      R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
          config +
          R"(","size":1456},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar",)"
          R"("digest":")" +
          layer +
          R"(","size":1064448}],"annotations":{"org.opencontainers.image.base.name":"busybox"}})");
  Write(dir, "docker_manifest",
        R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",)"
        R"("config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":")" +
            config +
            R"(","size":1456},"layers":[{"mediaType":)"
            R"("application/vnd.docker.image.rootfs.diff.tar.gzip","digest":")" +
            layer + R"(","size":4096}]})");
  Write(dir, "image_config",
        R"({"created":"2026-01-01T00:00:00Z","architecture":"arm","variant":"v7","os":"linux",)"
        R"("config":{"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":[")" +
            layer + R"("]}})");
  for (std::string_view type : {kOciManifest, kDockerManifest}) {
    std::vector<IndexChild> children = {
        {{std::string(type), Sha256Digest("amd64"), 529, {}, {}}, P("linux/amd64")},
        {{std::string(type), Sha256Digest("arm64"), 530, {}, {}}, P("linux/arm64")},
        {{std::string(type), Sha256Digest("armv7"), 531, {}, {}}, P("linux/arm/v7")}};
    std::string media_type;
    std::map<std::string, std::string> annotations;
    if (type == kOciManifest) annotations = {{"org.opencontainers.image.source", "manifold"}};
    Write(dir, type == kOciManifest ? "oci_index" : "docker_manifest_list",
          *BuildIndex(children, annotations, &media_type));
  }
}

// Rewrites the name of the archive's first entry and its header checksum.
std::string Renamed(std::string archive, const std::string& name) {
  std::memset(archive.data(), 0, 100);
  std::memcpy(archive.data(), name.data(), std::min<size_t>(name.size(), 100));
  std::memset(archive.data() + 148, ' ', 8);
  unsigned sum = 0;
  for (size_t i = 0; i < 512; ++i) sum += static_cast<unsigned char>(archive[i]);
  std::snprintf(archive.data() + 148, 8, "%06o", sum);
  archive[155] = ' ';
  return archive;
}

std::string ArchiveOf(const fs::path& dir) {
  std::string archive;
  Status s = WriteTarFromDirectory(dir.string(), {}, &archive);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    std::exit(1);
  }
  return archive;
}

void TarSeeds(const fs::path& dir, const fs::path& scratch) {
  fs::path tree = scratch / "context";
  fs::create_directories(tree / "src/nested");
  std::ofstream(tree / "Dockerfile") << "FROM busybox\nCOPY . /app\n";
  std::ofstream(tree / "src/nested/main.c") << "int main() { return 0; }\n";
  std::ofstream(tree / ("long-" + std::string(120, 'n'))) << "needs a PAX path\n";
  fs::create_symlink("src/nested", tree / "link");
  std::string context = ArchiveOf(tree);
  Write(dir, "context", context);

  fs::path one = scratch / "one";
  fs::create_directories(one);
  std::ofstream(one / "file") << "x\n";
  std::string single = ArchiveOf(one);
  Write(dir, "traversal", Renamed(single, "../escape"));
  Write(dir, "absolute", Renamed(single, "/tmp/escape"));
  fs::path escape = scratch / "escape";
  fs::create_directories(escape);
  fs::create_symlink("../../outside", escape / "link");
  Write(dir, "symlink_escape", ArchiveOf(escape));
}

void BuildRequestSeeds(const fs::path& dir) {
  using nlohmann::json;
  const json minimal = {{"platforms", {"linux/amd64"}},
                        {"tags", {"127.0.0.1:5000/team/app:1"}},
                        {"context", Sha256Digest("context")},
                        {"dockerfile", "FROM busybox\n"}};
  Write(dir, "minimal", minimal.dump());
  json full = minimal;
  full.update({{"platforms", {"linux/amd64", "linux/arm64", "linux/arm/v7"}},
               {"tags", {"127.0.0.1:5000/team/app:1.2", "ghcr.io/org/app:latest"}},
               {"dockerfile", "FROM busybox AS final\nARG VERSION\nRUN uname -m\n"},
               {"dockerfile_path", "docker/Dockerfile"},
               {"target", "final"},
               {"build_args", {{"VERSION", "1.2"}}},
               {"labels", {{"maintainer", "team"}}},
               {"no_cache", true},
               {"pull", false},
               {"source", "https://example.com/team/app"},
               {"revision", "0123abcd"},
               {"job_timeout_seconds", 1800},
               {"emulation", "allow"}});
  Write(dir, "full", full.dump());
  json secrets = minimal;
  secrets["secrets"] = {{"npm_token", Base64Encode("s3cret")}, {"id.rsa", Base64Encode("key")}};
  Write(dir, "secrets", secrets.dump());
  json annotations = minimal;
  annotations["manifest_annotations"] = {{"org.opencontainers.image.title", "app"}};
  annotations["index_annotations"] = {{"org.opencontainers.image.description", "the app"}};
  Write(dir, "annotations", annotations.dump());
  json bad_platform = minimal;
  bad_platform["platforms"] = {"linux/sparc"};
  Write(dir, "invalid_platform", bad_platform.dump());
  json pinned_tag = minimal;
  pinned_tag["tags"] = {"127.0.0.1:5000/app@" + Sha256Digest("x")};
  Write(dir, "invalid_tag_digest", pinned_tag.dump());
  json bad_secret = minimal;
  bad_secret["secrets"] = {{"../escape", "not base64!"}};
  Write(dir, "invalid_secret", bad_secret.dump());
  Write(dir, "invalid_not_object", R"(["linux/amd64"])");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <repo>/tests/fuzz\n", argv[0]);
    return 2;
  }
  fs::path out = argv[1];
  fs::path scratch = fs::temp_directory_path() / ("manifold-seeds-" + std::to_string(getpid()));
  WireSeeds(out / "wire");
  TextSeeds(out / "reference",
            {"127.0.0.1:5000/team/app:1.2", "ghcr.io/org/app@" + Sha256Digest("x"), "busybox",
             "localhost/app:latest", "[::1]:5000/a/b__c-d.e:tag",
             "docker.io/library/alpine:3.19@" + Sha256Digest("y")});
  TextSeeds(out / "platform", {"linux/amd64", "linux/arm64/v8", "linux/arm/v7", "linux/armhf",
                               "linux/amd64, linux/arm64,linux/amd64", "x86_64", "aarch64",
                               "windows/amd64", "linux/386"});
  OciSeeds(out / "oci");
  TarSeeds(out / "tar", scratch);
  BuildRequestSeeds(out / "build_request");
  fs::remove_all(scratch);
  return 0;
}
