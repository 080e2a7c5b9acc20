#include "tests/support/scaling_burst.h"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "common/http_client.h"

namespace manifold::test {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string OneDecimal(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1fs", seconds);
  return text;
}

struct AgentCount {
  int online = 0;
  int listed = 0;  // online or draining
};

// The agents of `platform` the coordinator lists; nullopt when it does not answer.
std::optional<AgentCount> CountAgents(const Farm& farm, const std::string& platform) {
  Result<HttpResponse> response = farm.Api("GET", "/v1/agents?platform=" + platform);
  if (!response.ok() || response->status != 200) return std::nullopt;
  json body = json::parse(response->body, nullptr, false);
  if (!body.is_object() || !body["agents"].is_array()) return std::nullopt;
  AgentCount count;
  for (const json& agent : body["agents"]) {
    ++count.listed;
    if (agent.value("state", "") == "online") ++count.online;
  }
  return count;
}

// A job that did not run in exactly one attempt, described; "" for one that did.
std::string Retried(uint64_t build_id, const json& job) {
  bool requeued = false;
  for (const json& event : job["events"]) {
    std::string state = event.value("state", "");
    requeued = requeued || state == "retry" || state == "requeued";
  }
  if (job.value("attempt", 0) == 1 && job.value("retries", 0) == 0 && !requeued) return "";
  return "build " + std::to_string(build_id) + " " + job.value("platform", "?") + ": attempt " +
         std::to_string(job.value("attempt", 0)) + ", retries " +
         std::to_string(job.value("retries", 0)) + (requeued ? ", requeued" : "");
}

}  // namespace

FarmOptions BurstFarmOptions(int prometheus_port, int build_ms) {
  return FarmOptions{{"amd64-1:linux/amd64", "arm64-1:linux/arm64"},
                     {{"MANIFOLD_FARM_BACKEND", "synthetic"},
                      {"MANIFOLD_SYNTHETIC_BUILD_MS", std::to_string(build_ms)},
                      {"MANIFOLD_FARM_PROMETHEUS_PORT", std::to_string(prometheus_port)},
                      {"MANIFOLD_FARM_PROMETHEUS_INTERVAL", "1s"}}};
}

Status StartLocalScaler(Subprocess& scaler, const Farm& farm, int prometheus_port, int max_agents) {
  return scaler.Start(
      {SourceDir() + "/ops/autoscaling/local-scaler.sh"},
      {{"MANIFOLD_FARM_DIR", farm.farm_dir()},
       {"MANIFOLD_PROMETHEUS_URL", "http://127.0.0.1:" + std::to_string(prometheus_port)},
       {"MANIFOLD_SCALE_MAX", std::to_string(max_agents)},
       {"MANIFOLD_SCALE_POLL", "1"},
       {"MANIFOLD_SCALE_IN_DELAY", "5"},
       {"MANIFOLD_SCALE_IN_PERIOD", "2"}},
      farm.dir() + "/local-scaler.log");
}

std::optional<double> PrometheusValue(int port, const std::string& query) {
  HttpRequest request;
  request.url =
      "http://127.0.0.1:" + std::to_string(port) + "/api/v1/query?query=" + UrlEncode(query);
  request.timeout_ms = 5000;
  request.connect_timeout_ms = 2000;
  Result<HttpResponse> response = HttpClient().Send(request);
  if (!response.ok() || response->status != 200) return std::nullopt;
  json body = json::parse(response->body, nullptr, false);
  if (!body.is_object() || body.value("status", "") != "success") return std::nullopt;
  const json& result = body["data"]["result"];
  if (!result.is_array() || result.size() != 1) return std::nullopt;
  const json& value = result[0]["value"];  // [time, "value"]
  if (!value.is_array() || value.size() != 2 || !value[1].is_string()) return std::nullopt;
  return std::strtod(value[1].get<std::string>().c_str(), nullptr);
}

BurstResult RunBurst(const Farm& farm, const BurstOptions& options) {
  BurstResult result;
  std::optional<AgentCount> start = CountAgents(farm, options.platform);
  if (!start) {
    result.status = Status::Unavailable("the coordinator does not answer GET /v1/agents");
    return result;
  }
  result.agents_at_start = result.peak_agents = start->online;

  const Clock::time_point t0 = Clock::now();
  const Clock::time_point deadline = t0 + options.timeout;
  std::map<uint64_t, Clock::time_point> submitted;  // by build id
  std::map<uint64_t, std::string> build_platform;
  const int builds = options.scaled_builds + options.other_builds;
  for (int i = 0; i < builds; ++i) {
    // The other platform's builds spread evenly through the burst.
    const bool other = (i + 1) * options.other_builds / builds > i * options.other_builds / builds;
    const std::string& platform = other ? options.other_platform : options.platform;
    Result<uint64_t> id = farm.SubmitBuild("FROM busybox\nRUN echo " + std::to_string(i) + "\n",
                                           options.tag + ":" + std::to_string(i), {platform});
    if (!id.ok()) {
      result.status = Status::Internal("submitting build " + std::to_string(i + 1) + " of " +
                                       std::to_string(builds) + ": " + id.status().message());
      return result;
    }
    submitted[*id] = Clock::now();
    build_platform[*id] = platform;
  }

  std::set<std::string> left_queue;  // "BUILD/JOB" seen out of pending
  std::map<uint64_t, std::string> final_state;
  AgentCount last{-1, -1};
  while (Clock::now() < deadline) {
    if (std::optional<AgentCount> now = CountAgents(farm, options.platform)) {
      double at = SecondsSince(t0);
      if (now->online != last.online || now->listed != last.listed) {
        result.timeline.push_back(OneDecimal(at) + " " + std::to_string(now->online) + " online, " +
                                  std::to_string(now->listed - now->online) + " draining");
        last = *now;
      }
      if (now->online > result.agents_at_start && result.first_new_s < 0) result.first_new_s = at;
      if (now->online > result.peak_agents) {
        result.peak_agents = now->online;
        result.peak_s = at;
      }
    }
    Result<HttpResponse> response = farm.Api("GET", "/v1/builds?limit=" + std::to_string(builds));
    json listed = response.ok() && response->status == 200
                      ? json::parse(response->body, nullptr, false)
                      : json();
    if (listed.is_object() && listed["builds"].is_array()) {
      for (const json& build : listed["builds"]) {
        uint64_t id = build.value("id", uint64_t{0});
        auto sent = submitted.find(id);
        if (sent == submitted.end() || final_state.count(id)) continue;
        for (const json& job : build["jobs"]) {
          std::string key = std::to_string(id) + "/" + std::to_string(job.value("id", 0));
          if (job.value("state", "") == "pending" || left_queue.count(key)) continue;
          left_queue.insert(key);
          double wait = std::chrono::duration<double>(Clock::now() - sent->second).count();
          result.queue_waits_s.push_back(wait);
          if (build_platform[id] == options.platform) result.scaled_queue_waits_s.push_back(wait);
        }
        std::string state = build.value("state", "");
        if (state != "succeeded" && state != "failed" && state != "canceled") continue;
        final_state[id] = state;
        for (const json& job : build["jobs"]) {
          std::string retried = Retried(id, job);
          if (!retried.empty()) result.retried_jobs.push_back(retried);
        }
      }
    }
    if (static_cast<int>(final_state.size()) == builds && result.builds_done_s < 0) {
      result.builds_done_s = SecondsSince(t0);
    }
    if (result.builds_done_s >= 0 &&
        (options.settle_agents == 0 || last.listed == options.settle_agents)) {
      if (options.settle_agents > 0) result.settled_s = SecondsSince(t0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (const auto& [id, state] : final_state) {
    (state == "succeeded" ? result.builds_succeeded : result.builds_failed)++;
  }
  if (result.builds_done_s < 0) {
    result.status = Status::Unavailable(
        std::to_string(builds - final_state.size()) + " of " + std::to_string(builds) +
        " builds did not end within " +
        std::to_string(std::chrono::duration_cast<std::chrono::seconds>(options.timeout).count()) +
        " s");
  } else if (options.settle_agents > 0 && result.settled_s < 0) {
    result.status = Status::Unavailable(
        "the " + options.platform + " agents did not come back to " +
        std::to_string(options.settle_agents) + " within the burst's timeout (last seen " +
        std::to_string(last.listed) + " listed)");
  }
  return result;
}

}  // namespace manifold::test
