// `manifold keygen`: the files it writes (real ones, in a temporary directory) and what it
// tells the operator to do with them for each role.
#include <gtest/gtest.h>

#include <sstream>

#include "cli/keygen.h"
#include "common/curve_keys.h"
#include "tests/support/temp_dir.h"

namespace manifold {
namespace {

struct Keygen {
  int exit_code;
  std::string out, err;
  std::string fingerprint;  // of the public key it wrote ("" if none)
};

Keygen KeygenAt(const std::string& prefix, const std::string& role) {
  std::ostringstream out, err;
  int exit_code = RunKeygen(prefix, "", role, &out, &err);
  Result<std::string> pub = ReadCurvePublicKey(prefix + ".pub");
  return {exit_code, out.str(), err.str(), pub.ok() ? CurveKeyFingerprint(*pub) : ""};
}

// The first two lines, which every role gets.
std::string Written(const std::string& prefix, const Keygen& keygen) {
  return "secret key: " + prefix +
         ".key (mode 0600; it never leaves its host)\npublic key: " + prefix + ".pub (" +
         keygen.fingerprint + ")\n";
}

constexpr char kReload[] =
    "then reload the coordinator (systemctl reload manifold-coordinator, or kill -HUP the pid "
    "in its --pid-file)\n";

TEST(KeygenTest, TheCoordinatorsPairSaysWhereEachFileGoes) {
  test::TempDir dir;
  const std::string p = dir.path() + "/coordinator";
  Keygen keygen = KeygenAt(p, "coordinator");
  ASSERT_EQ(keygen.exit_code, 0) << keygen.err;
  EXPECT_EQ(keygen.out, Written(p, keygen) + "for the coordinator (--role coordinator):\n" +
                            "  keep " + p +
                            ".key on the coordinator host, for manifold-coordinator "
                            "--curve-secret-key\n" +
                            "  copy " + p +
                            ".pub to every agent host, for manifold-agent "
                            "--coordinator-public-key\n");
  EXPECT_TRUE(ReadCurveSecretKey(p + ".key").ok());
}

TEST(KeygenTest, AnAgentsPairSaysWhereEachFileGoes) {
  test::TempDir dir;
  const std::string p = dir.path() + "/x86-01";
  Keygen keygen = KeygenAt(p, "agent");
  ASSERT_EQ(keygen.exit_code, 0) << keygen.err;
  EXPECT_EQ(keygen.out, Written(p, keygen) + "for an agent (--role agent):\n" + "  keep " + p +
                            ".key on that agent's host, for manifold-agent --curve-secret-key\n" +
                            "  append " + p + ".pub to the coordinator's --agent-keys file, " +
                            kReload);
}

TEST(KeygenTest, WithoutARoleBothUsesAreLabeled) {
  test::TempDir dir;
  const std::string p = dir.path() + "/pair";
  Keygen keygen = KeygenAt(p, "");
  ASSERT_EQ(keygen.exit_code, 0) << keygen.err;
  const size_t coordinator = keygen.out.find("for the coordinator (--role coordinator):\n  keep " +
                                             p + ".key on the coordinator host");
  const size_t agent =
      keygen.out.find("for an agent (--role agent):\n  keep " + p + ".key on that agent's host");
  EXPECT_NE(coordinator, std::string::npos) << keygen.out;
  EXPECT_NE(agent, std::string::npos) << keygen.out;
  EXPECT_LT(coordinator, agent);
  EXPECT_TRUE(keygen.out.starts_with(Written(p, keygen))) << keygen.out;
  EXPECT_TRUE(keygen.out.ends_with(kReload)) << keygen.out;

  Keygen again = KeygenAt(p, "agent");  // never overwrites a key in use
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_EQ(again.out, "");
  EXPECT_EQ(again.err,
            "manifold keygen: " + p + ".pub exists; remove it first or choose another name\n");
}

}  // namespace
}  // namespace manifold
