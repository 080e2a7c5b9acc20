// --config for the real manifold-agent and manifold-coordinator binaries: the file sets
// their options, an environment variable beats the file and a flag beats both; a file with
// a setting the program does not have stops it before it starts anything.
#include <gtest/gtest.h>

#include <fstream>

#include "common/http_client.h"
#include "tests/support/ports.h"
#include "tests/support/postgres_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace manifold {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::string BinaryDir() { return MANIFOLD_BINARY_DIR; }

std::string Write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
  return path;
}

// The status of GET http://127.0.0.1:PORT/PATH once it answers within `timeout` (0 if never).
int GetStatus(int port, const std::string& path, milliseconds timeout) {
  int status = 0;
  test::WaitFor(
      [&] {
        HttpRequest request;
        request.url = "http://127.0.0.1:" + std::to_string(port) + path;
        request.timeout_ms = 2000;
        Result<HttpResponse> response = HttpClient().Send(request);
        if (response.ok()) status = response->status;
        return status == 200;
      },
      timeout);
  return status;
}

class ProgramConfigTest : public ::testing::Test {
 protected:
  // Starts the agent with ARGS and ENV; true once its /metrics answers on metrics_port.
  bool AgentServesMetricsOn(int metrics_port, std::vector<std::string> args,
                            const std::map<std::string, std::string>& env = {}) {
    test::Subprocess agent;
    args.insert(args.begin(), BinaryDir() + "/agent/manifold-agent");
    Status started = agent.Start(args, env, dir_.path() + "/agent.log");
    EXPECT_TRUE(started.ok()) << started.message();
    const bool served = GetStatus(metrics_port, "/metrics", milliseconds(15000)) == 200;
    agent.Stop();
    EXPECT_TRUE(served) << agent.LogTail();
    return served;
  }

  test::TempDir dir_;
};

TEST_F(ProgramConfigTest, TheAgentTakesItsOptionsFromTheFileUnlessTheEnvironmentOrAFlagSays) {
  const int from_file = test::FreeTcpPort(), from_env = test::FreeTcpPort(),
            from_flag = test::FreeTcpPort();
  const std::string config = Write(dir_.path() + "/agent.toml",
                                   "# manifold-agent\n"
                                   "coordinator = \"tcp://127.0.0.1:" +
                                       std::to_string(test::FreeTcpPort()) +
                                       "\"\n"
                                       "backend = \"synthetic\"\n"
                                       "id = \"configured\"\n"
                                       "work-dir = \"" +
                                       dir_.path() +
                                       "/work\"\n"
                                       "label = [\"rack=4\", \"zone=a\"]\n"
                                       "metrics-listen = \"127.0.0.1:" +
                                       std::to_string(from_file) + "\"\n");
  const std::string env_listen = "127.0.0.1:" + std::to_string(from_env);
  EXPECT_TRUE(AgentServesMetricsOn(from_file, {"--config", config}));
  EXPECT_TRUE(AgentServesMetricsOn(from_file, {}, {{"MANIFOLD_CONFIG", config}}));
  EXPECT_TRUE(AgentServesMetricsOn(from_env, {"--config", config},
                                   {{"MANIFOLD_AGENT_METRICS_LISTEN", env_listen}}));
  EXPECT_TRUE(AgentServesMetricsOn(
      from_flag, {"--config", config, "--metrics-listen", "127.0.0.1:" + std::to_string(from_flag)},
      {{"MANIFOLD_AGENT_METRICS_LISTEN", env_listen}}));

  Write(config, "metrics-listen = \"127.0.0.1:1\"\nslot = 2\n");
  test::CommandResult typo =
      test::RunCommand({BinaryDir() + "/agent/manifold-agent", "--config", config}, seconds(30));
  EXPECT_EQ(typo.exit_code, 2) << typo.output;
  EXPECT_NE(typo.output.find("config file " + config +
                             ", line 2: `slot` is not an option of this program; did you mean "
                             "`slots`?"),
            std::string::npos)
      << typo.output;
}

// Before it touches the database: each mistake is one line on stderr and exit status 2.
TEST_F(ProgramConfigTest, ABadFileStopsTheCoordinatorWithTheLineAndTheFix) {
  const std::string config = dir_.path() + "/coordinator.toml";
  auto run = [&](const std::string& text) {
    Write(config, text);
    return test::RunCommand({BinaryDir() + "/coordinator/manifold-coordinator", "--config", config},
                            seconds(30));
  };
  const std::string prefix = "manifold-coordinator: config file " + config;
  test::CommandResult bare = run("# the API\napi-listen = \"127.0.0.1:7080\"\napi-auth = on\n");
  EXPECT_EQ(bare.exit_code, 2) << bare.output;
  EXPECT_EQ(bare.output, prefix +
                             ", line 3: not valid TOML (Error while parsing value: could not "
                             "determine value type); `on` is not a TOML value; quote strings: "
                             "api-auth = \"on\"\n");

  test::CommandResult twice = run("api-auth = \"on\"\napi-auth = \"off\"\n");
  EXPECT_EQ(twice.exit_code, 2) << twice.output;
  EXPECT_EQ(twice.output,
            prefix + ", line 2: `api-auth` is set twice (first on line 1); keep one of them\n");

  test::CommandResult typo = run("api-lisen = \"0.0.0.0:7080\"\n");
  EXPECT_EQ(typo.exit_code, 2) << typo.output;
  EXPECT_EQ(typo.output, prefix +
                             ", line 1: `api-lisen` is not an option of this program; did you "
                             "mean `api-listen`? (--help lists the options)\n");
}

TEST_F(ProgramConfigTest, TheCoordinatorRunsFromAConfigFile) {
  test::PostgresServer postgres;
  Status started = postgres.Start();
  ASSERT_TRUE(started.ok()) << started.message();
  const int api_port = test::FreeTcpPort();
  const std::string config =
      Write(dir_.path() + "/coordinator.toml",
            "database-url = \"" + postgres.url() + "\"\n" +
                "api-listen = \"127.0.0.1:" + std::to_string(api_port) + "\"\n" +
                "agent-listen = \"tcp://127.0.0.1:" + std::to_string(test::FreeTcpPort()) + "\"\n" +
                "metrics-listen = \"127.0.0.1:" + std::to_string(test::FreeTcpPort()) + "\"\n" +
                "state-dir = \"" + dir_.path() + "/state\"\n" + "merge-workers = 2\n");
  test::Subprocess coordinator;
  started =
      coordinator.Start({BinaryDir() + "/coordinator/manifold-coordinator", "--config", config}, {},
                        dir_.path() + "/coordinator.log");
  ASSERT_TRUE(started.ok()) << started.message();
  EXPECT_EQ(GetStatus(api_port, "/readyz", milliseconds(30000)), 200) << coordinator.LogTail();
  coordinator.Stop();

  Write(config, "[coordinator]\ndatabase-url = \"" + postgres.url() + "\"\n");
  test::CommandResult table = test::RunCommand(
      {BinaryDir() + "/coordinator/manifold-coordinator", "--config", config}, seconds(30));
  EXPECT_EQ(table.exit_code, 2) << table.output;
  EXPECT_NE(table.output.find("tables are not used"), std::string::npos) << table.output;
}

}  // namespace
}  // namespace manifold
