#include "common/reference.h"

#include <gtest/gtest.h>

#include "common/digest.h"

namespace manifold {
namespace {

const std::string kDigest = Sha256Digest("manifold");

Reference Parsed(const std::string& text) {
  Result<Reference> ref = ParseReference(text);
  EXPECT_TRUE(ref.ok()) << text << ": " << ref.status().message();
  return ref.ok() ? *ref : Reference{};
}

TEST(ReferenceTest, HostWithPort) {
  EXPECT_EQ(Parsed("127.0.0.1:5000/team/app:1.2"),
            (Reference{"127.0.0.1:5000", "team/app", "1.2", ""}));
  EXPECT_EQ(Parsed("localhost:5000/app"), (Reference{"localhost:5000", "app", "latest", ""}));
  EXPECT_EQ(Parsed("localhost/app"), (Reference{"localhost", "app", "latest", ""}));
  EXPECT_EQ(Parsed("ghcr.io/org/app:v1"), (Reference{"ghcr.io", "org/app", "v1", ""}));
}

TEST(ReferenceTest, NestedPaths) {
  EXPECT_EQ(Parsed("127.0.0.1:5000/a/b/c:tag"), (Reference{"127.0.0.1:5000", "a/b/c", "tag", ""}));
}

TEST(ReferenceTest, IPv6Host) {
  EXPECT_EQ(Parsed("[::1]:5000/app:dev"), (Reference{"[::1]:5000", "app", "dev", ""}));
  EXPECT_EQ(Parsed("[::1]/app"), (Reference{"[::1]", "app", "latest", ""}));
  EXPECT_FALSE(ParseReference("[zz::1]:5000/app").ok());
  EXPECT_FALSE(ParseReference("[::1/app").ok());
}

TEST(ReferenceTest, TagAndDigest) {
  EXPECT_EQ(Parsed("localhost:5000/app:1.0@" + kDigest),
            (Reference{"localhost:5000", "app", "1.0", kDigest}));
}

TEST(ReferenceTest, DigestOnlyHasNoTag) {
  EXPECT_EQ(Parsed("localhost:5000/app@" + kDigest),
            (Reference{"localhost:5000", "app", "", kDigest}));
}

TEST(ReferenceTest, DockerHubNormalisation) {
  EXPECT_EQ(Parsed("ubuntu"), (Reference{"docker.io", "library/ubuntu", "latest", ""}));
  EXPECT_EQ(Parsed("ubuntu").ToString(), "docker.io/library/ubuntu:latest");
  EXPECT_EQ(Parsed("user/app"), (Reference{"docker.io", "user/app", "latest", ""}));
  EXPECT_EQ(Parsed("docker.io/ubuntu:22.04"),
            (Reference{"docker.io", "library/ubuntu", "22.04", ""}));
  EXPECT_EQ(Parsed("index.docker.io/user/app"), Parsed("user/app"));
}

TEST(ReferenceTest, SeparatorsInPathComponents) {
  EXPECT_EQ(Parsed("localhost/a.b_c__d---e/f").repository, "a.b_c__d---e/f");
  for (const char* bad : {"localhost/a..b", "localhost/a___b", "localhost/-a", "localhost/a-",
                          "localhost/a_.b", "localhost/a$b"}) {
    EXPECT_FALSE(ParseReference(bad).ok()) << "accepted " << bad;
  }
}

TEST(ReferenceTest, BadReferencesRejectedWithQuotedInput) {
  const std::string long_tag(129, 't');
  const std::string long_name = "localhost/" + std::string(246, 'a');  // 256 characters
  ASSERT_EQ(long_name.size(), 256u);
  const std::vector<std::string> bad = {
      "localhost:5000/Team/app",
      "Ubuntu",
      "",
      "ubuntu:",
      "localhost:5000/app:",
      "a//b",
      "/ubuntu",
      "ubuntu/",
      "localhost/",
      "localhost:5000/app:" + long_tag,
      "localhost:5000/app:.tag",
      "localhost:5000/app:ta+g",
      long_name,
      "localhost:5000/app@sha256:abc",
      "localhost:5000/app@sha256:" + std::string(64, 'G'),
      "localhost:5000/app@md5:" + std::string(32, 'a'),
      "localhost:5000/app@",
      "localhost:99999/app",
      "localhost:/app",
      "-bad.host/app",
      "bad_host.io/app",
  };
  for (const std::string& text : bad) {
    Result<Reference> ref = ParseReference(text);
    ASSERT_FALSE(ref.ok()) << "accepted " << text;
    EXPECT_EQ(ref.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(ref.status().message().find("\"" + text + "\""), std::string::npos)
        << ref.status().message();
  }
}

TEST(ReferenceTest, LimitsAreInclusive) {
  const std::string max_tag(128, 't');
  EXPECT_EQ(Parsed("localhost:5000/app:" + max_tag).tag, max_tag);
  const std::string max_name = "localhost/" + std::string(245, 'a');
  ASSERT_EQ(max_name.size(), 255u);
  EXPECT_EQ(Parsed(max_name).Name(), max_name);
}

TEST(ReferenceTest, ErrorsNameThePart) {
  EXPECT_NE(ParseReference("localhost/Team/app").status().message().find("lowercase"),
            std::string::npos);
  EXPECT_NE(ParseReference("app@sha256:abc").status().message().find("digest \"sha256:abc\""),
            std::string::npos);
  EXPECT_NE(ParseReference("app:").status().message().find("tag after ':' is empty"),
            std::string::npos);
  EXPECT_NE(ParseReference("a//b").status().message().find("empty path component"),
            std::string::npos);
}

TEST(ReferenceTest, ToStringRoundTrips) {
  for (const std::string& text :
       {std::string("127.0.0.1:5000/a/b/c:tag"), std::string("ubuntu"), std::string("user/app:1"),
        std::string("[::1]:5000/app@") + kDigest,
        std::string("localhost:5000/app:1.0@") + kDigest}) {
    Reference first = Parsed(text);
    Reference second = Parsed(first.ToString());
    EXPECT_EQ(first, second) << text << " -> " << first.ToString();
  }
  EXPECT_EQ(Parsed("localhost:5000/app:1.0@" + kDigest).ToString(),
            "localhost:5000/app:1.0@" + kDigest);
  EXPECT_EQ(Parsed("localhost:5000/app@" + kDigest).ToString(), "localhost:5000/app@" + kDigest);
  EXPECT_EQ(Parsed("127.0.0.1:5000/a/b/c:tag").Name(), "127.0.0.1:5000/a/b/c");
}

TEST(IsLoopbackRegistryTest, LoopbackHosts) {
  for (const char* host :
       {"localhost", "localhost:5000", "LOCALHOST:5000", "127.0.0.1", "127.0.0.1:5000",
        "127.1.2.3:80", "[::1]", "[::1]:5000", "[0:0:0:0:0:0:0:1]:5000"}) {
    EXPECT_TRUE(IsLoopbackRegistry(host)) << host;
  }
}

TEST(IsLoopbackRegistryTest, OtherHosts) {
  for (const char* host : {"docker.io", "ghcr.io", "10.0.0.1:5000", "128.0.0.1", "127.0.0",
                           "127.0.0.1.example.com", "localhost.example.com", "[::2]:5000",
                           "localhost:", "localhost:abc", "127.0.0.1:99999", "[::1", "", "::1"}) {
    EXPECT_FALSE(IsLoopbackRegistry(host)) << host;
  }
}

TEST(RepositoryNameTest, ValidatedAlone) {
  EXPECT_TRUE(ValidateRepositoryName("team/app").ok());
  EXPECT_TRUE(ValidateRepositoryName("a__b/c---d").ok());
  EXPECT_EQ(ValidateRepositoryName("a..b").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ValidateRepositoryName(std::string(256, 'a')).code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(IsValidTag("v1.2_rc-3"));
  EXPECT_FALSE(IsValidTag("-v1"));
  EXPECT_FALSE(IsValidTag(std::string(129, 'a')));
}

}  // namespace
}  // namespace manifold
