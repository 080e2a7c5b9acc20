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

// Writes `text` to `path` with `mode`; returns the path.
std::string WriteFile(const std::string& path, const std::string& text, mode_t mode) {
  WriteFile(path, text);
  chmod(path.c_str(), mode);
  return path;
}

// The message a key read failed with ("ok" if it did not).
std::string Refusal(const Result<std::string>& read) {
  return read.ok() ? "ok" : read.status().message();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
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
  std::string secret =
      WriteFile(dir.path() + "/open.key", GenerateCurveKeyPair()->secret_key + "\n", 0644);
  EXPECT_EQ(Refusal(ReadCurveSecretKey(secret)),
            "CURVE secret key " + secret +
                " is open to group or others (mode 0644); run chmod 600 " + secret +
                " (and make a new pair with manifold keygen if someone else may have "
                "read it)");
  EXPECT_FALSE(ReadCurveSecretKey(dir.path() + "/missing.key").ok());
}

// The secret-key file says what it is; one from before that, the key alone, still reads.
TEST(CurveKeys, SecretKeyFilesAreMarkedAndOldOnesStillRead) {
  test::TempDir dir;
  Result<CurveKeyPair> pair = GenerateCurveKeyPair();
  ASSERT_TRUE(WriteCurveKeyPair(*pair, dir.path() + "/a.key", dir.path() + "/a.pub", "a").ok());
  EXPECT_EQ(
      ReadFile(dir.path() + "/a.key"),
      "# manifold CURVE secret key: keep on this host, mode 0600\n" + pair->secret_key + "\n");
  Result<std::string> key =
      ReadCurveSecretKey(WriteFile(dir.path() + "/old.key", pair->secret_key + "\n", 0600));
  ASSERT_TRUE(key.ok()) << key.status().message();
  EXPECT_EQ(*key, pair->secret_key);
}

// Both keys are 40 Z85 characters: a swapped file is told by its form, before its mode.
TEST(CurveKeys, APublicKeyFileIsRefusedAsTheSecretKey) {
  test::TempDir dir;
  const std::string prefix = dir.path() + "/x86-01";
  ASSERT_TRUE(
      WriteCurveKeyPair(*GenerateCurveKeyPair(), prefix + ".key", prefix + ".pub", "x86-01").ok());
  const std::string what =
      " is a public-key file (manifold keygen writes PREFIX.pub for sharing and PREFIX.key for "
      "--curve-secret-key); pass ";
  // Mode 0644, but the chmod advice would be wrong.
  EXPECT_EQ(Refusal(ReadCurveSecretKey(prefix + ".pub")), prefix + ".pub" + what + prefix + ".key");
  // A copy under another name is known by the name after its key.
  const std::string copy =
      WriteFile(dir.path() + "/coordinator-key", ReadFile(prefix + ".pub"), 0600);
  EXPECT_EQ(Refusal(ReadCurveSecretKey(copy)), copy + what + "the PREFIX.key made with it");
}

TEST(CurveKeys, ASecretKeyFileIsRefusedAsAPublicKey) {
  test::TempDir dir;
  const std::string prefix = dir.path() + "/coordinator";
  Result<CurveKeyPair> pair = GenerateCurveKeyPair();
  ASSERT_TRUE(WriteCurveKeyPair(*pair, prefix + ".key", prefix + ".pub", "coordinator").ok());
  const std::string what =
      " is a secret-key file (manifold keygen writes PREFIX.key to keep on its host and "
      "PREFIX.pub for sharing); pass ";
  const std::string fix =
      " (a secret key belongs on its own host only: delete copies of it elsewhere)";
  EXPECT_EQ(Refusal(ReadCurvePublicKey(prefix + ".key")),
            prefix + ".key" + what + prefix + ".pub" + fix);
  // A copy under another name, readable by all: known by keygen's first line.
  const std::string copy =
      WriteFile(dir.path() + "/coordinator-public", ReadFile(prefix + ".key"), 0644);
  EXPECT_EQ(Refusal(ReadCurvePublicKey(copy)), copy + what + "the PREFIX.pub made with it" + fix);
  // An old secret-key file (the key alone, mode 0600) under another name.
  const std::string old = WriteFile(dir.path() + "/coordinator-old", pair->secret_key + "\n", 0600);
  EXPECT_EQ(Refusal(ReadCurvePublicKey(old)),
            old +
                " looks like a secret-key file (mode 0600 and a key without a name, as in "
                "manifold keygen's PREFIX.key); pass the PREFIX.pub made with it" +
                fix + "; if it is a public key, chmod 644 " + old);

  // Public keys still read however they came: keygen's .pub made private, a bare key
  // readable by all.
  chmod((prefix + ".pub").c_str(), 0600);
  EXPECT_EQ(*ReadCurvePublicKey(prefix + ".pub"), pair->public_key);
  EXPECT_EQ(*ReadCurvePublicKey(WriteFile(dir.path() + "/bare", pair->public_key + "\n", 0644)),
            pair->public_key);
}

TEST(CurveKeys, AnAgentRefusesItsOwnPublicKeyAsTheCoordinators) {
  test::TempDir dir;
  const std::string agent = dir.path() + "/x86-01", coordinator = dir.path() + "/coordinator";
  Result<CurveKeyPair> agent_pair = GenerateCurveKeyPair();
  Result<CurveKeyPair> coordinator_pair = GenerateCurveKeyPair();
  ASSERT_TRUE(WriteCurveKeyPair(*agent_pair, agent + ".key", agent + ".pub", "x86-01").ok());
  ASSERT_TRUE(WriteCurveKeyPair(*coordinator_pair, coordinator + ".key", coordinator + ".pub",
                                "coordinator")
                  .ok());
  EXPECT_EQ(Refusal(ReadCoordinatorPublicKey(agent + ".pub", agent_pair->secret_key)),
            agent +
                ".pub is this agent's own public key (the pair of its --curve-secret-key); pass "
                "the coordinator's PREFIX.pub, copied from the coordinator host");
  Result<std::string> right =
      ReadCoordinatorPublicKey(coordinator + ".pub", agent_pair->secret_key);
  ASSERT_TRUE(right.ok()) << right.status().message();
  EXPECT_EQ(*right, coordinator_pair->public_key);
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

  // An agent's .key appended where its .pub belongs: its key would be taken as a public one.
  ASSERT_TRUE(
      WriteCurveKeyPair(*GenerateCurveKeyPair(), dir.path() + "/x.key", dir.path() + "/x.pub", "x")
          .ok());
  WriteFile(path, a + " a\n" + ReadFile(dir.path() + "/x.key"));
  Result<CurveAllowList> secret = ReadCurveAllowList(path);
  ASSERT_FALSE(secret.ok());
  EXPECT_EQ(secret.status().message(),
            path +
                " line 2: a secret-key file (manifold keygen's PREFIX.key) was added here; "
                "remove it and append the agent's PREFIX.pub");
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
