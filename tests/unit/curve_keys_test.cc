// CURVE key files, the agent allow-list and fingerprints: real files in a temporary
// directory; keys made with OpenSSL checked against libzmq's own key functions.
#include "common/curve_keys.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <zmq.h>

#include <fstream>

#include "common/curve_support.h"
#include "tests/support/temp_dir.h"

namespace manifold {
namespace {

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

TEST(CurveKeys, KeygenWritesAPairThatReadsBackAndRefusesToOverwrite) {
  ASSERT_TRUE(RequireCurveSupport().ok());
  test::TempDir dir;
  Result<CurveKeyPair> pair = GenerateCurveKeyPair();
  ASSERT_TRUE(pair.ok()) << pair.status().message();
  std::string secret = dir.path() + "/a.key", pub = dir.path() + "/a.pub";
  ASSERT_TRUE(WriteCurveKeyPair(*pair, secret, pub, "agent-a").ok());
  struct stat info;
  ASSERT_EQ(stat(secret.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  EXPECT_EQ(*ReadCurveSecretKey(secret), pair->secret_key);
  EXPECT_EQ(*ReadCurvePublicKey(pub), pair->public_key);
  EXPECT_EQ(*CurvePublicKeyOf(pair->secret_key), pair->public_key);
  Result<CurveAllowList> list = ReadCurveAllowList(pub);  // a .pub line is an allow-list line
  ASSERT_TRUE(list.ok());
  EXPECT_EQ((*list)[pair->public_key], "agent-a");

  Status again = WriteCurveKeyPair(*GenerateCurveKeyPair(), secret, pub, "agent-a");
  EXPECT_EQ(again.code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(*ReadCurveSecretKey(secret), pair->secret_key);  // untouched
}

// The pairs made with OpenSSL are the pairs libzmq would make: libzmq derives the same public
// key from the secret, and a pair libzmq made derives its own public key here.
TEST(CurveKeys, KeysAgreeWithLibzmq) {
  ASSERT_TRUE(RequireCurveSupport().ok());
  for (int i = 0; i < 20; ++i) {
    Result<CurveKeyPair> ours = GenerateCurveKeyPair();
    ASSERT_TRUE(ours.ok()) << ours.status().message();
    ASSERT_TRUE(IsCurveKey(ours->secret_key) && IsCurveKey(ours->public_key));
    char derived[41] = {};
    ASSERT_EQ(zmq_curve_public(derived, ours->secret_key.c_str()), 0);
    EXPECT_EQ(std::string(derived), ours->public_key);

    char pub[41] = {}, secret[41] = {};
    ASSERT_EQ(zmq_curve_keypair(pub, secret), 0);
    Result<std::string> public_of = CurvePublicKeyOf(secret);
    ASSERT_TRUE(public_of.ok()) << public_of.status().message();
    EXPECT_EQ(*public_of, std::string(pub));
  }
  EXPECT_FALSE(CurvePublicKeyOf("not a key").ok());
  EXPECT_FALSE(CurvePublicKeyOf(std::string(40, '#') + "0").ok());
}

TEST(CurveKeys, SecretKeyReadableByOthersIsRefused) {
  test::TempDir dir;
  std::string secret = dir.path() + "/open.key";
  WriteFile(secret, GenerateCurveKeyPair()->secret_key + "\n");
  chmod(secret.c_str(), 0644);
  Result<std::string> key = ReadCurveSecretKey(secret);
  ASSERT_FALSE(key.ok());
  EXPECT_NE(key.status().message().find("chmod 600"), std::string::npos);
  EXPECT_FALSE(ReadCurveSecretKey(dir.path() + "/missing.key").ok());
}

TEST(CurveKeys, AllowListSkipsCommentsKeepsNamesAndNamesTheBadLine) {
  test::TempDir dir;
  std::string a = GenerateCurveKeyPair()->public_key, b = GenerateCurveKeyPair()->public_key;
  std::string path = dir.path() + "/agent-keys";
  WriteFile(path, "# fleet\n\n" + a + " x86-01 rack 4\n  " + b + "\n");
  Result<CurveAllowList> list = ReadCurveAllowList(path);
  ASSERT_TRUE(list.ok()) << list.status().message();
  EXPECT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[a], "x86-01 rack 4");
  EXPECT_EQ((*list)[b], "");

  WriteFile(path, a + "\nnot-a-key name\n");
  Result<CurveAllowList> bad = ReadCurveAllowList(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("line 2"), std::string::npos);
}

TEST(CurveKeys, FingerprintIsShortStableAndDistinct) {
  std::string a = GenerateCurveKeyPair()->public_key, b = GenerateCurveKeyPair()->public_key;
  EXPECT_EQ(CurveKeyFingerprint(a).size(), 7u + 16u);
  EXPECT_EQ(CurveKeyFingerprint(a), CurveKeyFingerprint(a));
  EXPECT_NE(CurveKeyFingerprint(a), CurveKeyFingerprint(b));
  EXPECT_FALSE(IsCurveKey("short"));
  EXPECT_FALSE(IsCurveKey(std::string(40, '"')));  // '"' is not a Z85 character
}

}  // namespace
}  // namespace manifold
