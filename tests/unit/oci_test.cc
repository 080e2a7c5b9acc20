#include "common/oci.h"

#include <gtest/gtest.h>

#include <string>

#include "common/digest.h"

namespace manifold {
namespace {

const std::string kDigestA = "sha256:" + std::string(64, 'a');
const std::string kDigestB = "sha256:" + std::string(64, 'b');
const std::string kDigestC = "sha256:" + std::string(64, 'c');

std::string OciManifestJson() {
  return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
         R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
         kDigestA +
         R"(","size":123},)"
         R"("layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":")" +
         kDigestB +
         R"(","size":4567},)"
         R"({"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":")" +
         kDigestC +
         R"(","size":89,"annotations":{"k":"v"}}],)"
         R"("annotations":{"org.opencontainers.image.created":"2024-01-01T00:00:00Z"}})";
}

TEST(ParseManifestTest, ReadsOciManifest) {
  Result<Manifest> m = ParseManifest(OciManifestJson());
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->media_type, kOciManifest);
  EXPECT_EQ(m->config.media_type, kOciConfig);
  EXPECT_EQ(m->config.digest, kDigestA);
  EXPECT_EQ(m->config.size, 123);
  ASSERT_EQ(m->layers.size(), 2u);
  EXPECT_EQ(m->layers[0].digest, kDigestB);
  EXPECT_EQ(m->layers[0].size, 4567);
  EXPECT_EQ(m->layers[1].annotations.at("k"), "v");
  EXPECT_EQ(m->annotations.at("org.opencontainers.image.created"), "2024-01-01T00:00:00Z");
}

TEST(ParseManifestTest, InfersOciWhenMediaTypeIsAbsent) {
  std::string json = R"({"schemaVersion":2,"config":{"mediaType":"x","digest":")" + kDigestA +
                     R"(","size":1},"layers":[]})";
  Result<Manifest> m = ParseManifest(json);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->media_type, kOciManifest);
  EXPECT_TRUE(m->layers.empty());
}

TEST(ParseManifestTest, ReadsDockerSchema2) {
  std::string json =
      R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",)"
      R"("config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":")" +
      kDigestA +
      R"(","size":7},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip",)"
      R"("digest":")" +
      kDigestB + R"(","size":8}]})";
  Result<Manifest> m = ParseManifest(json);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->media_type, kDockerManifest);
  EXPECT_EQ(m->config.media_type, kDockerConfig);
  EXPECT_EQ(m->layers.at(0).media_type, kDockerLayerTarGzip);
}

TEST(ParseManifestTest, RejectsIndexes) {
  std::string by_type =
      R"({"schemaVersion":2,"mediaType":")" + std::string(kOciIndex) + R"(","manifests":[]})";
  Result<Manifest> m = ParseManifest(by_type);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(m.status().message().find("index"), std::string::npos) << m.status().message();

  Result<Manifest> by_shape = ParseManifest(R"({"schemaVersion":2,"manifests":[]})");
  ASSERT_FALSE(by_shape.ok());
  EXPECT_NE(by_shape.status().message().find("index"), std::string::npos);

  std::string docker_list = R"({"schemaVersion":2,"mediaType":")" +
                            std::string(kDockerManifestList) + R"(","manifests":[]})";
  EXPECT_FALSE(ParseManifest(docker_list).ok());
}

TEST(ParseManifestTest, RejectsMalformedInput) {
  const std::string good_config =
      R"("config":{"mediaType":"x","digest":")" + kDigestA + R"(","size":1})";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "not valid JSON"},
      {"not json", "not valid JSON"},
      {"[1,2]", "not a JSON object"},
      {R"({"schemaVersion":1,"name":"x"})", "schema 1"},
      {R"({"schemaVersion":3,)" + good_config + R"(,"layers":[]})", "schemaVersion 3"},
      {R"({)" + good_config + R"(,"layers":[]})", "schemaVersion"},
      {R"({"schemaVersion":2,"layers":[]})", "config"},
      {R"({"schemaVersion":2,)" + good_config + "}", "layers"},
      {R"({"schemaVersion":2,)" + good_config + R"(,"layers":{}})", "layers"},
      {R"({"schemaVersion":2,"mediaType":"text/plain",)" + good_config + R"(,"layers":[]})",
       "unsupported manifest media type"},
      {R"({"schemaVersion":2,"mediaType":7,)" + good_config + R"(,"layers":[]})", "not a string"},
      {R"({"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:abc","size":1},)"
       R"("layers":[]})",
       "sha256:<64"},
      {R"({"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:../../etc/passwd",)"
       R"("size":1},"layers":[]})",
       "sha256:<64"},
      {R"({"schemaVersion":2,"config":{"mediaType":"x","digest":")" + kDigestA +
           R"(","size":-1},"layers":[]})",
       "negative"},
      {R"({"schemaVersion":2,"config":{"mediaType":"x","digest":")" + kDigestA +
           R"(","size":"1"},"layers":[]})",
       "size"},
      {R"({"schemaVersion":2,"config":{"mediaType":"x","digest":")" + kDigestA +
           R"(","size":1.5},"layers":[]})",
       "size"},
      {R"({"schemaVersion":2,"config":{"mediaType":"x","digest":")" + kDigestA +
           R"(","size":18446744073709551615},"layers":[]})",
       "size"},
      {R"({"schemaVersion":2,"config":{"digest":")" + kDigestA + R"(","size":1},"layers":[]})",
       "mediaType"},
      {R"({"schemaVersion":2,)" + good_config + R"(,"layers":[7]})", "layer 0"},
      {R"({"schemaVersion":2,)" + good_config + R"(,"layers":[],"annotations":{"a":1}})",
       "annotation"},
  };
  for (const auto& [input, expected] : cases) {
    Result<Manifest> m = ParseManifest(input);
    ASSERT_FALSE(m.ok()) << "accepted: " << input;
    EXPECT_EQ(m.status().code(), Status::Code::kInvalidArgument) << input;
    EXPECT_NE(m.status().message().find(expected), std::string::npos)
        << "input: " << input << "\nmessage: " << m.status().message();
  }
}

// Bytes from a registry can be cut anywhere; every prefix must be an error, not a crash.
TEST(ParseManifestTest, EveryTruncationIsAnError) {
  const std::string full = OciManifestJson();
  for (size_t n = 0; n < full.size(); ++n) {
    EXPECT_FALSE(ParseManifest(full.substr(0, n)).ok()) << n;
    EXPECT_FALSE(ParseIndex(full.substr(0, n)).ok()) << n;
  }
  EXPECT_TRUE(ParseManifest(full).ok());
}

TEST(ParseImageConfigPlatformTest, NormalisesThroughParsePlatform) {
  Result<Platform> p = ParseImageConfigPlatform(R"({"architecture":"amd64","os":"linux"})");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(*p, (Platform{"linux", "amd64", ""}));

  p = ParseImageConfigPlatform(R"({"architecture":"aarch64","os":"linux","variant":"v8"})");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(*p, (Platform{"linux", "arm64", ""}));

  p = ParseImageConfigPlatform(
      R"({"architecture":"arm","os":"linux","variant":"v6","rootfs":{"type":"layers"}})");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(*p, (Platform{"linux", "arm", "v6"}));
}

TEST(ParseImageConfigPlatformTest, RejectsConfigsWithoutAPlatform) {
  Result<Platform> p = ParseImageConfigPlatform(R"({"os":"linux"})");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("architecture"), std::string::npos);
  EXPECT_FALSE(ParseImageConfigPlatform(R"({"os":"linux","architecture":5})").ok());
  EXPECT_FALSE(ParseImageConfigPlatform(R"({"os":"linux","architecture":"sparc-x"})").ok());
  EXPECT_FALSE(ParseImageConfigPlatform("{").ok());
  EXPECT_FALSE(ParseImageConfigPlatform("").ok());
}

IndexChild Child(std::string_view media_type, const std::string& digest, int64_t size,
                 Platform platform) {
  IndexChild c;
  c.manifest.media_type = std::string(media_type);
  c.manifest.digest = digest;
  c.manifest.size = size;
  c.platform = std::move(platform);
  return c;
}

TEST(BuildIndexTest, OciChildrenGiveAnOciIndex) {
  std::vector<IndexChild> children = {
      Child(kOciManifest, kDigestA, 500, {"linux", "amd64", ""}),
      Child(kOciManifest, kDigestB, 501, {"linux", "arm", "v7"}),
  };
  children[1].manifest.annotations["note"] = "arm";
  std::string media_type;
  Result<std::string> bytes = BuildIndex(
      children, {{"org.opencontainers.image.source", "https://example.com/x"}}, &media_type);
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  EXPECT_EQ(media_type, kOciIndex);
  // The exact bytes are part of the contract: their digest is what gets pushed and recorded.
  EXPECT_EQ(*bytes,
            R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)"
            R"("manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
            R"("digest":")" +
                kDigestA +
                R"(","size":500,"platform":{"architecture":"amd64","os":"linux"}},)"
                R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
                kDigestB +
                R"(","size":501,"platform":{"architecture":"arm","os":"linux","variant":"v7"},)"
                R"("annotations":{"note":"arm"}}],)"
                R"("annotations":{"org.opencontainers.image.source":"https://example.com/x"}})");

  Result<Index> index = ParseIndex(*bytes);
  ASSERT_TRUE(index.ok()) << index.status().message();
  EXPECT_EQ(index->media_type, kOciIndex);
  ASSERT_EQ(index->manifests.size(), 2u);
  EXPECT_EQ(index->manifests[0].digest, kDigestA);
  EXPECT_EQ(index->manifests[0].size, 500);
  EXPECT_EQ(index->manifests[0].platform, (Platform{"linux", "amd64", ""}));
  EXPECT_EQ(index->manifests[1].platform, (Platform{"linux", "arm", "v7"}));
  EXPECT_EQ(index->manifests[1].annotations.at("note"), "arm");
  EXPECT_EQ(index->annotations.at("org.opencontainers.image.source"), "https://example.com/x");

  std::string again_type;
  Result<std::string> again = BuildIndex(
      children, {{"org.opencontainers.image.source", "https://example.com/x"}}, &again_type);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Sha256Digest(*again), Sha256Digest(*bytes));
}

TEST(BuildIndexTest, DockerChildrenGiveAManifestList) {
  std::vector<IndexChild> children = {
      Child(kDockerManifest, kDigestA, 10, {"linux", "amd64", ""}),
      Child(kDockerManifest, kDigestB, 11, {"linux", "arm64", ""}),
  };
  std::string media_type;
  Result<std::string> bytes = BuildIndex(children, {}, &media_type);
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  EXPECT_EQ(media_type, kDockerManifestList);
  Result<Index> index = ParseIndex(*bytes);
  ASSERT_TRUE(index.ok()) << index.status().message();
  EXPECT_EQ(index->media_type, kDockerManifestList);
  ASSERT_EQ(index->manifests.size(), 2u);
  EXPECT_EQ(index->manifests[1].media_type, kDockerManifest);
  EXPECT_EQ(index->manifests[1].platform, (Platform{"linux", "arm64", ""}));
  EXPECT_EQ(bytes->find("annotations"), std::string::npos);
}

TEST(BuildIndexTest, RefusesWhatCannotBeAnIndex) {
  struct Case {
    std::vector<IndexChild> children;
    std::map<std::string, std::string> annotations;
    std::string expected;
  };
  IndexChild with_annotation = Child(kDockerManifest, kDigestA, 10, {"linux", "amd64", ""});
  with_annotation.manifest.annotations["a"] = "b";
  const std::vector<Case> cases = {
      {{}, {}, "no platforms"},
      {{Child(kOciManifest, kDigestA, 10, {"linux", "amd64", ""}),
        Child(kDockerManifest, kDigestB, 10, {"linux", "arm64", ""})},
       {},
       "cannot list OCI and Docker manifests in one index"},
      {{Child(kOciManifest, kDigestA, 10, {"linux", "amd64", ""}),
        Child(kOciManifest, kDigestB, 10, {"linux", "amd64", ""})},
       {},
       "linux/amd64 is listed twice"},
      {{Child(kOciIndex, kDigestA, 10, {"linux", "amd64", ""})}, {}, "single-platform"},
      {{Child("text/plain", kDigestA, 10, {"linux", "amd64", ""})}, {}, "single-platform"},
      {{Child(kOciManifest, "sha256:xyz", 10, {"linux", "amd64", ""})}, {}, "invalid digest"},
      {{Child(kOciManifest, kDigestA, 0, {"linux", "amd64", ""})}, {}, "size 0"},
      {{Child(kOciManifest, kDigestA, 10, {"linux", "", ""})}, {}, "no os or architecture"},
      {{Child(kDockerManifest, kDigestA, 10, {"linux", "amd64", ""})},
       {{"a", "b"}},
       "cannot carry annotations"},
      {{with_annotation}, {}, "cannot carry"},
      {{Child(kOciManifest, kDigestA, 10, {"linux", "amd64", ""})},
       {{"bad", "\xff\xfe"}},
       "cannot encode"},
  };
  for (const Case& c : cases) {
    std::string media_type = "untouched";
    Result<std::string> bytes = BuildIndex(c.children, c.annotations, &media_type);
    ASSERT_FALSE(bytes.ok()) << "expected failure: " << c.expected;
    EXPECT_EQ(bytes.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(bytes.status().message().find(c.expected), std::string::npos)
        << bytes.status().message();
    EXPECT_EQ(media_type, "untouched");
  }
}

TEST(ParseIndexTest, KeepsPlatformsAsWrittenAndDefaultsToOci) {
  // An index from another tool: no mediaType, an attestation entry with unknown/unknown.
  std::string json = R"({"schemaVersion":2,"manifests":[)"
                     R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
                     kDigestA +
                     R"(","size":1,"platform":{"architecture":"arm64","os":"linux",)"
                     R"("variant":"v8"}},)"
                     R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
                     kDigestB +
                     R"(","size":2,"platform":{"architecture":"unknown","os":"unknown"}},)"
                     R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
                     kDigestC + R"(","size":3}]})";
  Result<Index> index = ParseIndex(json);
  ASSERT_TRUE(index.ok()) << index.status().message();
  EXPECT_EQ(index->media_type, kOciIndex);
  ASSERT_EQ(index->manifests.size(), 3u);
  EXPECT_EQ(index->manifests[0].platform, (Platform{"linux", "arm64", "v8"}));
  EXPECT_EQ(index->manifests[1].platform, (Platform{"unknown", "unknown", ""}));
  EXPECT_FALSE(index->manifests[2].platform.has_value());
}

TEST(ParseIndexTest, RejectsManifestsAndMalformedEntries) {
  Result<Index> manifest = ParseIndex(OciManifestJson());
  ASSERT_FALSE(manifest.ok());
  EXPECT_NE(manifest.status().message().find("single-platform manifest"), std::string::npos);
  EXPECT_FALSE(ParseIndex(R"({"schemaVersion":2,"config":{},"layers":[]})").ok());
  EXPECT_FALSE(ParseIndex(R"({"schemaVersion":2})").ok());
  Result<Index> bad_platform =
      ParseIndex(R"({"schemaVersion":2,"manifests":[{"mediaType":"m","digest":")" + kDigestA +
                 R"(","size":1,"platform":{"os":"linux"}}]})");
  ASSERT_FALSE(bad_platform.ok());
  EXPECT_NE(bad_platform.status().message().find("architecture"), std::string::npos);
}

TEST(MediaTypeTest, ClassifiesManifestsAndIndexes) {
  EXPECT_TRUE(IsManifestMediaType(kOciManifest));
  EXPECT_TRUE(IsManifestMediaType(kDockerManifest));
  EXPECT_FALSE(IsManifestMediaType(kOciIndex));
  EXPECT_TRUE(IsIndexMediaType(kOciIndex));
  EXPECT_TRUE(IsIndexMediaType(kDockerManifestList));
  EXPECT_FALSE(IsIndexMediaType(kDockerManifest));
  EXPECT_FALSE(IsIndexMediaType(""));
}

}  // namespace
}  // namespace manifold
