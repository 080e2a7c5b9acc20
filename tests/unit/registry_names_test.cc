// The registry client checks repository names and tags by the Distribution grammar of
// reference.h before it sends anything: a name the spec forbids is refused with an
// InvalidArgument that quotes it, and no request leaves (port 1 on loopback would refuse
// a connection with Unavailable).
#include <gtest/gtest.h>

#include <string>

#include "common/registry.h"

namespace manifold {
namespace {

const std::string kDigest =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

RegistryClient Unreachable() {
  RegistryOptions options;
  options.plain_http = true;
  options.credentials = RegistryCredentials{};
  options.max_attempts = 1;
  return RegistryClient("127.0.0.1:1", options);
}

TEST(RegistryNamesTest, RefusesRepositoryNamesTheSpecForbids) {
  const RegistryClient client = Unreachable();
  for (const std::string bad : {"a..b", "a._b", "team/-app", "Team/app", "a//b", ""}) {
    Result<bool> exists = client.BlobExists(bad, kDigest);
    ASSERT_FALSE(exists.ok()) << bad;
    EXPECT_EQ(exists.status().code(), Status::Code::kInvalidArgument) << bad;
    EXPECT_NE(exists.status().message().find("invalid repository name \"" + bad + "\""),
              std::string::npos)
        << exists.status().message();
  }
  Status pushed = client.PushBlob("a..b", kDigest, "");
  EXPECT_EQ(pushed.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(pushed.message().find("registry 127.0.0.1:1: push blob"), std::string::npos)
      << pushed.message();
  EXPECT_NE(pushed.message().find("path component \"a..b\""), std::string::npos)
      << pushed.message();
  EXPECT_EQ(client.MountBlob("team/app", kDigest, "a..b").status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(client.GetManifest("a..b", "latest").status().code(), Status::Code::kInvalidArgument);
}

TEST(RegistryNamesTest, RefusesTagsTheSpecForbids) {
  const RegistryClient client = Unreachable();
  Result<FetchedManifest> fetched = client.GetManifest("team/app", ".hidden");
  EXPECT_EQ(fetched.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(fetched.status().message().find("neither a tag nor a digest"), std::string::npos);
}

TEST(RegistryNamesTest, ValidNamesReachTheNetwork) {
  // A valid name passes the check, so the request is sent and fails to connect.
  Result<bool> exists = Unreachable().BlobExists("team/app.v2_x__y-z", kDigest);
  EXPECT_EQ(exists.status().code(), Status::Code::kUnavailable) << exists.status().message();
}

}  // namespace
}  // namespace manifold
