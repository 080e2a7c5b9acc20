// The coordinator and its `token` commands waiting for a database that does not answer
// (a free port on 127.0.0.1 where nothing listens): a stop signal ends the wait at once,
// says why, and exits as a stop (the service) or a failure (a token command that did not
// run), rather than after the whole --database-wait, by which time systemd's stop timeout
// would have killed it.
#include <gtest/gtest.h>
#include <signal.h>

#include "tests/support/farm.h"
#include "tests/support/ports.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace manifold::test {
namespace {

using std::chrono::milliseconds;

class DatabaseWaitTest : public ::testing::Test {
 protected:
  // Starts the coordinator with `args` after flags that point it at a database that does
  // not answer, and waits until it says it waits for it.
  void StartWaiting(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {
        BinaryDir() + "/coordinator/manifold-coordinator",
        "--database-url",
        "postgresql://manifold@127.0.0.1:" + std::to_string(FreeTcpPort()) + "/manifold",
        "--database-wait",
        "600",
        "--state-dir",
        dir_.path() + "/state"};
    argv.insert(argv.end(), args.begin(), args.end());
    ASSERT_TRUE(coordinator_.Start(argv, {}, dir_.path() + "/coordinator.log").ok());
    ASSERT_TRUE(WaitFor(
        [&] {
          return coordinator_.LogTail().find("waiting for the database") != std::string::npos;
        },
        milliseconds(30000)))
        << coordinator_.LogTail();
  }

  TempDir dir_{"manifold-database-wait"};
  Subprocess coordinator_;
};

TEST_F(DatabaseWaitTest, SigtermEndsTheServicesWaitAsACleanStop) {
  StartWaiting({"--api-listen", "127.0.0.1:" + std::to_string(FreeTcpPort()), "--agent-listen",
                "tcp://127.0.0.1:" + std::to_string(FreeTcpPort()), "--metrics-listen",
                "127.0.0.1:0"});
  ASSERT_EQ(kill(coordinator_.pid(), SIGTERM), 0);
  // Far less than the 600 s --database-wait; a bound, not a measurement.
  EXPECT_EQ(coordinator_.Wait(milliseconds(20000)), 0) << coordinator_.LogTail();
  EXPECT_NE(coordinator_.LogTail().find("stopped by SIGTERM while waiting for the database: "),
            std::string::npos)
      << coordinator_.LogTail();
}

TEST_F(DatabaseWaitTest, SigintEndsATokenCommandsWaitAsAFailure) {
  StartWaiting({"token", "list"});
  ASSERT_EQ(kill(coordinator_.pid(), SIGINT), 0);
  EXPECT_EQ(coordinator_.Wait(milliseconds(20000)), 1) << coordinator_.LogTail();
  EXPECT_NE(coordinator_.LogTail().find("stopped by SIGINT while waiting for the database: "),
            std::string::npos)
      << coordinator_.LogTail();
}

}  // namespace
}  // namespace manifold::test
