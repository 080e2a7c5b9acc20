// A farm of two coordinators (ops/farm.sh up with MANIFOLD_FARM_COORDINATORS=2) and a real
// buildah agent given both endpoints: `manifold build`, given both URLs, follows its build
// across the death of the leading coordinator, without error, and the build completes on
// the other one. The killed coordinator, started again, waits as the standby.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/registry.h"
#include "tests/support/farm.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace manifold::test {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(HighlyAvailableFarmTest, TheCliFollowsABuildAcrossTheLeadersDeath) {
  Farm farm(FarmOptions{{"amd64-1:linux/amd64"}, {{"MANIFOLD_FARM_COORDINATORS", "2"}}});
  Status up = farm.Up();
  ASSERT_TRUE(up.ok()) << up.message();
  ASSERT_NE(farm.server_urls().find(','), std::string::npos) << farm.server_urls();

  TempDir context("manifold-ha");
  std::ofstream(context.path() + "/Dockerfile")
      << "FROM busybox\nRUN sleep 8 && echo built > /built\n";
  const std::string tag = farm.registry() + "/ha:latest";
  Subprocess cli;
  ASSERT_TRUE(cli.Start({BinaryDir() + "/cli/manifold", "--server", farm.server_urls(), "build",
                         "--platform", "linux/amd64", "-t", tag, context.path()},
                        {}, context.path() + "/cli.log")
                  .ok());
  auto building = [&] {
    Result<HttpResponse> build = farm.Api("GET", "/v1/builds/1");
    if (!build.ok()) return false;
    json body = json::parse(build->body, nullptr, false);
    return body.is_object() && !body["jobs"].empty() && body["jobs"][0]["state"] == "building";
  };
  ASSERT_TRUE(WaitFor(building, milliseconds(120000))) << cli.LogTail();

  ASSERT_TRUE(farm.Kill("coordinator").ok());
  EXPECT_EQ(cli.Wait(milliseconds(240000)), 0) << cli.LogTail();
  RegistryClient registry(farm.registry());
  Result<FetchedManifest> index = registry.GetManifest("ha", "latest");
  ASSERT_TRUE(index.ok()) << index.status().message();

  // Back as the standby: the other leads on.
  ASSERT_TRUE(farm.Start("coordinator").ok());
  CommandResult status = farm.Manifold({"status", "1"});
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_NE(status.output.find("succeeded"), std::string::npos) << status.output;
  std::ifstream log(farm.dir() + "/farm/logs/coordinator.log");
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("standby: coordinator-2 leads"), std::string::npos) << text;
}

}  // namespace
}  // namespace manifold::test
