// Swapped CURVE key files given to the real programs: each stops at start, exit status 1,
// with one line that names the flag, the file and the file to pass instead. The keys come
// from the real `manifold keygen`; neither program gets as far as its database or link.
#include <gtest/gtest.h>

#include "tests/support/farm.h"
#include "tests/support/ports.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace manifold::test {
namespace {

using std::chrono::seconds;

class CurveKeyFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"coordinator", "x86-01"}) {
      CommandResult keygen =
          RunCommand({BinaryDir() + "/cli/manifold", "keygen", keys_ + "/" + name}, seconds(30));
      ASSERT_EQ(keygen.exit_code, 0) << keygen.output;
    }
  }

  TempDir dir_{"manifold-key-files"};
  const std::string keys_ = dir_.path();
};

TEST_F(CurveKeyFilesTest, TheCoordinatorRefusesItsPublicKeyAsItsSecretKey) {
  CommandResult swapped =
      RunCommand({BinaryDir() + "/coordinator/manifold-coordinator", "--database-url",
                  "postgresql://127.0.0.1:" + std::to_string(FreeTcpPort()) + "/manifold",
                  "--state-dir", dir_.path() + "/state", "--curve-secret-key",
                  keys_ + "/coordinator.pub", "--agent-keys", keys_ + "/x86-01.pub"},
                 seconds(30));
  EXPECT_EQ(swapped.exit_code, 1) << swapped.output;
  EXPECT_NE(swapped.output.find("--curve-secret-key: " + keys_ +
                                "/coordinator.pub is a public-key file (manifold keygen writes "
                                "PREFIX.pub for sharing and PREFIX.key for --curve-secret-key); "
                                "pass " +
                                keys_ + "/coordinator.key"),
            std::string::npos)
      << swapped.output;
}

TEST_F(CurveKeyFilesTest, AnAgentRefusesASecretKeyOrItsOwnKeyAsTheCoordinators) {
  auto agent = [&](const std::string& coordinator_public_key) {
    return RunCommand(
        {BinaryDir() + "/agent/manifold-agent", "--coordinator",
         "tcp://127.0.0.1:" + std::to_string(FreeTcpPort()), "--backend", "synthetic", "--work-dir",
         dir_.path() + "/work", "--metrics-listen", "127.0.0.1:0", "--curve-secret-key",
         keys_ + "/x86-01.key", "--coordinator-public-key", coordinator_public_key},
        seconds(30));
  };
  CommandResult secret = agent(keys_ + "/coordinator.key");
  EXPECT_EQ(secret.exit_code, 1) << secret.output;
  EXPECT_NE(secret.output.find("--coordinator-public-key: " + keys_ +
                               "/coordinator.key is a secret-key file (manifold keygen writes "
                               "PREFIX.key to keep on its host and PREFIX.pub for sharing); "
                               "pass " +
                               keys_ +
                               "/coordinator.pub (a secret key belongs on its own host only: "
                               "delete copies of it elsewhere)"),
            std::string::npos)
      << secret.output;

  CommandResult own = agent(keys_ + "/x86-01.pub");
  EXPECT_EQ(own.exit_code, 1) << own.output;
  EXPECT_NE(own.output.find("--coordinator-public-key: " + keys_ +
                            "/x86-01.pub is this agent's own public key (the pair of its "
                            "--curve-secret-key); pass the coordinator's PREFIX.pub, copied "
                            "from the coordinator host"),
            std::string::npos)
      << own.output;
}

}  // namespace
}  // namespace manifold::test
