// ops/farm.sh's Prometheus files against a real Prometheus (Debian's, started with
// `ops/farm.sh start prometheus`): the farm lists its coordinator and every agent at the
// port it really listens on (agents pick theirs), so on a healthy farm every target is up
// and, once the alert rules have been evaluated over those scrapes, no alert is pending.
// A killed agent stays listed, shows down and makes ManifoldAgentDown pending, as a lost
// host would; a stopped one leaves the list.
//
// The farm's agents are synthetic (they build nothing) and Prometheus scrapes and
// evaluates every second (MANIFOLD_FARM_PROMETHEUS_INTERVAL), so every wait is short.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "common/http_client.h"
#include "tests/support/farm.h"
#include "tests/support/ports.h"
#include "tests/support/wait.h"

namespace manifold::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

// The `data` of one Prometheus HTTP API answer, null JSON when it did not answer success.
json PrometheusApi(int port, const std::string& path) {
  HttpRequest request;
  request.url = "http://127.0.0.1:" + std::to_string(port) + path;
  request.timeout_ms = 5000;
  request.connect_timeout_ms = 2000;
  Result<HttpResponse> response = HttpClient().Send(request);
  if (!response.ok() || response->status != 200) return nullptr;
  json body = json::parse(response->body, nullptr, false);
  if (!body.is_object() || body.value("status", "") != "success") return nullptr;
  return body["data"];
}

// Each active target's health by its job and its agent or coordinator label, e.g.
// "manifold-agent/amd64-1" -> "up".
std::map<std::string, std::string> TargetHealth(const json& targets) {
  std::map<std::string, std::string> health;
  if (!targets.is_object()) return health;
  for (const json& target : targets["activeTargets"]) {
    const json& labels = target["labels"];
    std::string name = labels.value("agent", labels.value("coordinator", "?"));
    health[labels.value("job", "?") + "/" + name] = target.value("health", "");
  }
  return health;
}

// The lastEvaluation of the ManifoldAgentDown rule, "" if Prometheus does not list it or
// its last evaluation failed.
std::string AgentDownEvaluated(int port) {
  json rules = PrometheusApi(port, "/api/v1/rules");
  if (!rules.is_object()) return "";
  for (const json& group : rules["groups"]) {
    for (const json& rule : group["rules"]) {
      if (rule.value("name", "") == "ManifoldAgentDown" && rule.value("health", "") == "ok") {
        return rule.value("lastEvaluation", "");
      }
    }
  }
  return "";
}

TEST(PrometheusFarmTest, EveryTargetUpUntilAnAgentIsKilledOrStopped) {
  const int port = FreeTcpPort();
  ASSERT_GT(port, 0);
  Farm farm(FarmOptions{{"amd64-1:linux/amd64", "amd64-2:linux/amd64", "arm64-1:linux/arm64"},
                        {{"MANIFOLD_FARM_BACKEND", "synthetic"},
                         {"MANIFOLD_FARM_PROMETHEUS_PORT", std::to_string(port)},
                         {"MANIFOLD_FARM_PROMETHEUS_INTERVAL", "1s"}}});
  Status up = farm.Up();
  ASSERT_TRUE(up.ok()) << up.message();
  // The farm's down (its destructor, also when an assertion fails) stops Prometheus too.
  Status started = farm.Start("prometheus");
  ASSERT_TRUE(started.ok()) << started.message();

  const std::map<std::string, std::string> all_up = {{"manifold-coordinator/coordinator", "up"},
                                                     {"manifold-agent/amd64-1", "up"},
                                                     {"manifold-agent/amd64-2", "up"},
                                                     {"manifold-agent/arm64-1", "up"}};
  std::map<std::string, std::string> health;
  ASSERT_TRUE(WaitFor(
      [&] {
        health = TargetHealth(PrometheusApi(port, "/api/v1/targets"));
        return health == all_up;
      },
      milliseconds(20000), milliseconds(250)))
      << "targets: " << json(health).dump() << "\n"
      << farm.LogTail("prometheus");

  // Two evaluations later, at least one ran wholly after every target was seen up.
  std::string seen = AgentDownEvaluated(port);
  for (int evaluations = 0; evaluations < 2; ++evaluations) {
    ASSERT_TRUE(WaitFor(
        [&] {
          std::string now = AgentDownEvaluated(port);
          if (now.empty() || now == seen) return false;
          seen = now;
          return true;
        },
        milliseconds(15000), milliseconds(200)))
        << "ManifoldAgentDown was not evaluated: " << PrometheusApi(port, "/api/v1/rules").dump()
        << "\n"
        << farm.LogTail("prometheus");
  }
  json alerts = PrometheusApi(port, "/api/v1/alerts");
  ASSERT_TRUE(alerts.is_object());
  EXPECT_TRUE(alerts["alerts"].empty()) << "alerts on a healthy farm: " << alerts.dump();
  EXPECT_EQ(TargetHealth(PrometheusApi(port, "/api/v1/targets")), all_up);

  // A lost host: its target stays, down, and ManifoldAgentDown is pending for it only.
  Status killed = farm.Kill("amd64-2");
  ASSERT_TRUE(killed.ok()) << killed.message();
  std::set<std::string> down_alerts;
  EXPECT_TRUE(WaitFor(
      [&] {
        json now = PrometheusApi(port, "/api/v1/alerts");
        if (!now.is_object()) return false;
        down_alerts.clear();
        for (const json& alert : now["alerts"]) {
          if (alert["labels"].value("alertname", "") != "ManifoldAgentDown") continue;
          down_alerts.insert(alert["labels"].value("agent", "?") + " " + alert.value("state", ""));
        }
        return !down_alerts.empty();
      },
      milliseconds(15000), milliseconds(200)))
      << farm.LogTail("prometheus");
  EXPECT_EQ(down_alerts, std::set<std::string>{"amd64-2 pending"});
  health = TargetHealth(PrometheusApi(port, "/api/v1/targets"));
  EXPECT_EQ(health["manifold-agent/amd64-2"], "down") << json(health).dump();
  EXPECT_EQ(health["manifold-agent/amd64-1"], "up") << json(health).dump();
  EXPECT_EQ(health["manifold-coordinator/coordinator"], "up") << json(health).dump();

  // A drained agent leaves the fleet: its target goes, the others stay.
  Status stopped = farm.Stop("arm64-1");
  ASSERT_TRUE(stopped.ok()) << stopped.message();
  EXPECT_TRUE(WaitFor(
      [&] {
        health = TargetHealth(PrometheusApi(port, "/api/v1/targets"));
        return health.count("manifold-agent/arm64-1") == 0 && health.size() == 3;
      },
      milliseconds(15000), milliseconds(200)))
      << "targets: " << json(health).dump();
  EXPECT_EQ(health["manifold-agent/amd64-1"], "up") << json(health).dump();
}

}  // namespace
}  // namespace manifold::test
