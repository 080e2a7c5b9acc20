// --pid-file with a real manifold-coordinator: the file holds the process's id while it
// runs, SIGHUP to that id reloads the agent key list (as `kill -HUP "$(cat FILE)"` does for
// an operator without systemd), and a clean stop removes the file. The keys come from the
// real `manifold keygen`.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "tests/support/coordinator_process.h"
#include "tests/support/farm.h"
#include "tests/support/postgres_server.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace manifold::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(CoordinatorPidFileTest, SighupToThePidInTheFileReloadsAgentKeysAndAStopRemovesIt) {
  TempDir dir{"manifold-pid-file"};
  PostgresServer postgres;
  Status started = postgres.Start();
  ASSERT_TRUE(started.ok()) << started.message();
  const std::string keys = dir.path() + "/keys";
  std::filesystem::create_directories(keys);
  std::filesystem::create_directories(dir.path() + "/run");
  for (const auto& [name, role] : {std::pair{"coordinator", "coordinator"},
                                   std::pair{"x86-01", "agent"}, std::pair{"arm-01", "agent"}}) {
    CommandResult keygen = RunCommand(
        {BinaryDir() + "/cli/manifold", "keygen", "--role", role, keys + "/" + name}, seconds(30));
    ASSERT_EQ(keygen.exit_code, 0) << keygen.output;
  }
  const std::string agent_keys = keys + "/agent-keys";
  std::ofstream(agent_keys) << ReadFile(keys + "/x86-01.pub");
  const std::string pid_file = dir.path() + "/run/coordinator.pid";
  CoordinatorProcess coordinator("pid-file", postgres.url(), dir.path() + "/state",
                                 {"--curve-secret-key", keys + "/coordinator.key", "--agent-keys",
                                  agent_keys, "--pid-file", pid_file},
                                 dir.path() + "/coordinator.log");
  started = coordinator.Start();
  ASSERT_TRUE(started.ok()) << started.message();
  ASSERT_TRUE(WaitFor([&] { return coordinator.Ready(); }, milliseconds(30000)))
      << coordinator.process().LogTail();
  const std::string pid_text = ReadFile(pid_file);
  ASSERT_EQ(pid_text, std::to_string(coordinator.process().pid()) + "\n");

  std::ofstream(agent_keys, std::ios::app) << ReadFile(keys + "/arm-01.pub");
  ASSERT_EQ(kill(std::stoi(pid_text), SIGHUP), 0);
  EXPECT_TRUE(WaitFor(
      [&] {
        return ReadFile(coordinator.process().log_file())
                   .find("reloaded the agent key list: 2 allowed keys from " + agent_keys) !=
               std::string::npos;
      },
      milliseconds(20000)))
      << coordinator.process().LogTail();

  EXPECT_EQ(coordinator.process().Stop(), 0) << coordinator.process().LogTail();
  EXPECT_FALSE(std::filesystem::exists(pid_file));
}

}  // namespace
}  // namespace manifold::test
