// The operations files against the programs they describe: every metric name the Grafana
// dashboard, the alert rules and the KEDA trigger query must be one a running coordinator
// or agent really exports (a renamed series would otherwise leave an empty panel or an
// alert that can never fire), and the files pass the tools that consume them
// (ops/check-ops-files.sh: promtool, jq, docker-compose).
//
// Also what operators and autoscalers read from running programs: JSON log lines with
// ids (--log-format json); on a farm of two agents, the coordinator's pending, running
// and desired agents and GET /v1/agents?idle=true while builds run, `manifold builds`,
// and `manifold build`'s live view on a pseudo-terminal.
//
// PostgreSQL, the coordinator and a manifold-agent are real processes on free ports. One
// build that fails inside buildah (FROM scratch has no shell for RUN) makes the
// coordinator observe its per-job histograms, which exist only after a first observation,
// without needing a registry; one that succeeds and is pushed to a real registry makes
// both programs count their registry requests, whose series exist only after a first
// request.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "common/digest.h"
#include "common/http_client.h"
#include "common/platform.h"
#include "common/tar.h"
#include "tests/support/farm.h"
#include "tests/support/ports.h"
#include "tests/support/postgres_server.h"
#include "tests/support/registry_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace manifold::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Every manifold_ name in `text`.
std::set<std::string> MetricNames(const std::string& text) {
  static const std::regex kName("manifold_[a-z0-9_]+");
  std::set<std::string> names;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kName);
       it != std::sregex_iterator(); ++it) {
    names.insert(it->str());
  }
  return names;
}

// The values of every "expr" key anywhere in a Grafana dashboard.
void CollectExprs(const json& node, std::string* out) {
  if (node.is_object()) {
    for (const auto& [key, value] : node.items()) {
      if (key == "expr" && value.is_string()) {
        *out += value.get<std::string>() + "\n";
      } else {
        CollectExprs(value, out);
      }
    }
  } else if (node.is_array()) {
    for (const json& item : node) CollectExprs(item, out);
  }
}

// The PromQL under `key:` in a YAML file: the rest of that line, or for a block scalar
// ("key: |") the lines indented deeper than the key. Comments and annotations, which may
// mention series by name in prose, are not queries and are left out.
std::string YamlValues(const std::string& yaml, const std::string& key) {
  std::istringstream lines(yaml);
  std::string line, out;
  size_t block_indent = std::string::npos;  // set while inside a block scalar
  while (std::getline(lines, line)) {
    size_t indent = line.find_first_not_of(' ');
    if (block_indent != std::string::npos) {
      if (indent == std::string::npos || indent > block_indent) {
        out += line + "\n";
        continue;
      }
      block_indent = std::string::npos;
    }
    if (indent == std::string::npos || line.compare(indent, key.size() + 1, key + ":") != 0) {
      continue;
    }
    std::string value = line.substr(indent + key.size() + 1);
    if (value.find('|') != std::string::npos &&
        value.find_first_not_of(" |-") == std::string::npos) {
      block_indent = indent;
    } else {
      out += value + "\n";
    }
  }
  return out;
}

// The names a /metrics exposition defines: every sample's name and every # TYPE, with
// the type of each family.
struct Exposition {
  std::set<std::string> samples;
  std::map<std::string, std::string> types;
};

Exposition ParseExposition(const std::string& text) {
  Exposition out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream fields(line.substr(7));
      std::string name, type;
      fields >> name >> type;
      out.types[name] = type;
    } else if (!line.empty() && line[0] != '#') {
      out.samples.insert(line.substr(0, line.find_first_of("{ ")));
    }
  }
  return out;
}

// Whether `name`, as a query uses it, is exported: a sample or family name, or a
// histogram's _bucket/_count/_sum series.
bool Exported(const std::string& name, const std::vector<Exposition>& exports) {
  for (const Exposition& e : exports) {
    if (e.samples.count(name) || e.types.count(name)) return true;
    for (const char* suffix : {"_bucket", "_count", "_sum"}) {
      std::string s = suffix;
      if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
        auto it = e.types.find(name.substr(0, name.size() - s.size()));
        if (it != e.types.end() && it->second == "histogram") return true;
      }
    }
  }
  return false;
}

std::string Scrape(int port) {
  HttpRequest request;
  request.url = "http://127.0.0.1:" + std::to_string(port) + "/metrics";
  request.timeout_ms = 10000;
  Result<HttpResponse> response = HttpClient().Send(request);
  return response.ok() && response->status == 200 ? response->body : std::string();
}

TEST(OpsFilesTest, YamlValuesReadsLinesAndBlocksButNotComments) {
  std::string yaml =
      "# expr: manifold_in_a_comment\n"
      "  - alert: A\n"
      "    expr: manifold_one > 0\n"
      "    annotations:\n"
      "      summary: manifold_in_prose\n"
      "  - alert: B\n"
      "    expr: |\n"
      "      sum(manifold_two)\n"
      "      / sum(manifold_three)\n"
      "    for: 5m\n"
      "        query: manifold_four\n";
  EXPECT_EQ(MetricNames(YamlValues(yaml, "expr")),
            (std::set<std::string>{"manifold_one", "manifold_two", "manifold_three"}));
  EXPECT_EQ(MetricNames(YamlValues(yaml, "query")), (std::set<std::string>{"manifold_four"}));
}

TEST(OpsFilesTest, ExportedMapsHistogramSeriesToTheirFamily) {
  Exposition e = ParseExposition(
      "# TYPE manifold_wait_seconds histogram\n"
      "manifold_wait_seconds_count{platform=\"linux/amd64\"} 0\n"
      "# TYPE manifold_jobs_total counter\n"
      "manifold_jobs_total{result=\"failed\"} 2\n");
  EXPECT_TRUE(Exported("manifold_wait_seconds_bucket", {e}));
  EXPECT_TRUE(Exported("manifold_wait_seconds_sum", {e}));
  EXPECT_TRUE(Exported("manifold_jobs_total", {e}));
  EXPECT_FALSE(Exported("manifold_jobs_total_bucket", {e}));  // a counter has no buckets
  EXPECT_FALSE(Exported("manifold_jobs", {e}));
}

// promtool and jq accept every file; CI installs both (ops/install-deps.sh).
TEST(OpsFilesTest, ToolsAcceptTheFiles) {
  if (RunCommand({"promtool", "--version"}, milliseconds(30000)).exit_code != 0) {
    GTEST_SKIP() << "promtool is not installed (Debian package prometheus; "
                    "ops/install-deps.sh installs it)";
  }
  CommandResult checked =
      RunCommand({SourceDir() + "/ops/check-ops-files.sh"}, milliseconds(180000));
  EXPECT_EQ(checked.exit_code, 0) << checked.output;
}

// Prometheus would scrape whatever holds the port, so the agent must not start without it.
TEST(OpsFilesTest, AgentRefusesToStartWhenItsMetricsPortIsTaken) {
  if (RunCommand({"buildah", "version"}, milliseconds(30000)).exit_code != 0) {
    GTEST_SKIP() << "buildah is not installed; the agent checks for it before binding";
  }
  int holder = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(holder, 0);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ASSERT_EQ(bind(holder, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(listen(holder, 1), 0);
  ASSERT_EQ(getsockname(holder, reinterpret_cast<sockaddr*>(&address), &length), 0);
  std::string taken = "127.0.0.1:" + std::to_string(ntohs(address.sin_port));
  TempDir dir("manifold-agent-port");
  CommandResult agent =
      RunCommand({BinaryDir() + "/agent/manifold-agent", "--coordinator", "tcp://127.0.0.1:1",
                  "--work-dir", dir.path() + "/work", "--metrics-listen", taken},
                 milliseconds(60000));
  close(holder);
  EXPECT_EQ(agent.exit_code, 1) << agent.output;
  EXPECT_NE(agent.output.find("cannot serve metrics on " + taken), std::string::npos)
      << agent.output;
}

class OpsFilesFarmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (RunCommand({"buildah", "version"}, milliseconds(30000)).exit_code != 0) {
      GTEST_SKIP() << "buildah is not installed; the agent needs it to start";
    }
    Status pg = postgres_.Start();
    ASSERT_TRUE(pg.ok()) << pg.message();
    api_port_ = FreeTcpPort();
    coordinator_metrics_port_ = FreeTcpPort();
    agent_metrics_port_ = FreeTcpPort();
    agent_endpoint_ = "tcp://127.0.0.1:" + std::to_string(FreeTcpPort());
    Status started = coordinator_.Start(
        {BinaryDir() + "/coordinator/manifold-coordinator", "--database-url", postgres_.url(),
         "--api-listen", "127.0.0.1:" + std::to_string(api_port_), "--agent-listen",
         agent_endpoint_, "--state-dir", dir_.path() + "/state", "--metrics-listen",
         "127.0.0.1:" + std::to_string(coordinator_metrics_port_), "--log-format", "json"},
        {}, dir_.path() + "/coordinator.log");
    ASSERT_TRUE(started.ok()) << started.message();
    ASSERT_TRUE(WaitFor([&] { return Get("/readyz").status == 200; }, milliseconds(20000)))
        << coordinator_.LogTail();
    started = agent_.Start({BinaryDir() + "/agent/manifold-agent", "--coordinator", agent_endpoint_,
                            "--id", "ops-agent", "--work-dir", dir_.path() + "/agent",
                            "--metrics-listen", "127.0.0.1:" + std::to_string(agent_metrics_port_),
                            "--drain-grace", "5", "--log-format", "json"},
                           {}, dir_.path() + "/agent.log");
    ASSERT_TRUE(started.ok()) << started.message();
  }

  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "---- coordinator log ----\n"
                << coordinator_.LogTail() << "---- agent log ----\n"
                << agent_.LogTail();
    }
    agent_.Stop(std::chrono::seconds(15));  // before the coordinator: the agent drains
    coordinator_.Stop();
  }

  HttpResponse Request(const std::string& method, const std::string& path,
                       const std::string& body = "",
                       const std::string& content_type = "application/json") {
    HttpRequest request;
    request.method = method;
    request.url = "http://127.0.0.1:" + std::to_string(api_port_) + path;
    request.body = body;
    request.headers = {{"Content-Type", content_type}};
    request.timeout_ms = 10000;
    Result<HttpResponse> response = HttpClient().Send(request);
    return response.ok() ? *response : HttpResponse{};
  }
  HttpResponse Get(const std::string& path) { return Request("GET", path); }

  // Submits a build of `platform` that fails in buildah (FROM scratch has no shell for
  // RUN) and waits until it ends; `state` gets its final state. Returns the build's id.
  uint64_t RunFailingBuild(const std::string& platform, std::string* state) {
    return RunBuild(platform, "127.0.0.1:1/unused:latest", "FROM scratch\nRUN false\n", state);
  }

  // Submits a build of `platform` from examples/hello with this Dockerfile, pushed to
  // `tag`, and waits until it ends; `state` gets its final state. Returns the build's id.
  uint64_t RunBuild(const std::string& platform, const std::string& tag,
                    const std::string& dockerfile, std::string* state) {
    std::string context;
    EXPECT_TRUE(WriteTarFromDirectory(SourceDir() + "/examples/hello", {}, &context).ok());
    std::string digest = Sha256Digest(context);
    EXPECT_EQ(Request("PUT", "/v1/contexts/" + digest, context, "application/x-tar").status, 201);
    json submit = {{"platforms", {platform}},
                   {"tags", {tag}},
                   {"context", digest},
                   {"dockerfile", dockerfile}};
    HttpResponse submitted = Request("POST", "/v1/builds", submit.dump());
    EXPECT_EQ(submitted.status, 201) << submitted.body;
    uint64_t id = json::parse(submitted.body, nullptr, false).value("id", uint64_t{0});
    std::string build_path = "/v1/builds/" + std::to_string(id);
    EXPECT_TRUE(WaitFor(
        [&] {
          json build = json::parse(Get(build_path).body, nullptr, false);
          *state = build.is_object() ? build.value("state", "") : "";
          return *state == "failed" || *state == "succeeded" || *state == "canceled";
        },
        milliseconds(180000), milliseconds(250)))
        << *state;
    return id;
  }

  TempDir dir_{"manifold-ops-files"};
  PostgresServer postgres_;
  Subprocess coordinator_;
  Subprocess agent_;
  int api_port_ = 0;
  int coordinator_metrics_port_ = 0;
  int agent_metrics_port_ = 0;
  std::string agent_endpoint_;
};

TEST_F(OpsFilesFarmTest, DashboardAlertsAndKedaUseOnlyExportedMetrics) {
  Result<Platform> host = HostPlatform();
  ASSERT_TRUE(host.ok()) << host.status().message();
  const std::string platform = host->ToString();

  // The agent is up and serves its own /metrics with its offer.
  std::string agent_text;
  ASSERT_TRUE(WaitFor(
      [&] {
        agent_text = Scrape(agent_metrics_port_);
        return agent_text.find("manifold_agent_platform_emulated{platform=\"" + platform +
                               "\"} 0") != std::string::npos;
      },
      milliseconds(30000)))
      << agent_text;
  ASSERT_TRUE(WaitFor(
      [&] {
        return Scrape(coordinator_metrics_port_)
                   .find("manifold_agents{mode=\"native\",platform=\"" + platform +
                         "\",state=\"online\"} 1") != std::string::npos;
      },
      milliseconds(30000)))
      << Scrape(coordinator_metrics_port_);

  // One build through the real agent that fails in the builder.
  std::string state;
  RunFailingBuild(platform, &state);
  EXPECT_EQ(state, "failed");

  // The agent counted the job and timed the builder.
  const std::string p = "platform=\"" + platform + "\"";
  ASSERT_TRUE(WaitFor(
      [&] {
        agent_text = Scrape(agent_metrics_port_);
        return agent_text.find("manifold_agent_jobs_total{" + p + ",result=\"failed\"} 1") !=
               std::string::npos;
      },
      milliseconds(10000)))
      << agent_text;
  EXPECT_NE(
      agent_text.find("manifold_agent_build_duration_seconds_count{" + p + ",result=\"failed\"} 1"),
      std::string::npos)
      << agent_text;
  EXPECT_NE(agent_text.find("manifold_agent_job_slots 1"), std::string::npos) << agent_text;

  std::string coordinator_text;
  ASSERT_TRUE(WaitFor(
      [&] {
        coordinator_text = Scrape(coordinator_metrics_port_);
        return coordinator_text.find("manifold_job_duration_seconds_count{" + p +
                                     ",result=\"failed\"} 1") != std::string::npos;
      },
      milliseconds(10000)))
      << coordinator_text;

  // One build that succeeds and is pushed to a real registry, so that the series which
  // exist only once a request was made (registry requests per operation and status) do.
  RegistryServer registry;
  Status registry_started = registry.Start();
  ASSERT_TRUE(registry_started.ok()) << registry_started.message();
  RunBuild(platform, registry.host() + "/ops:latest", "FROM scratch\nCOPY hello.sh /hello.sh\n",
           &state);
  EXPECT_EQ(state, "succeeded") << registry.LogTail();
  ASSERT_TRUE(WaitFor(
      [&] {
        agent_text = Scrape(agent_metrics_port_);
        coordinator_text = Scrape(coordinator_metrics_port_);
        return agent_text.find(
                   "manifold_agent_registry_requests_total{operation=\"manifest_put\"," + p +
                   ",status=\"201\"} 1") != std::string::npos &&
               coordinator_text.find(
                   "manifold_registry_requests_total{operation=\"manifest_put\",status=\"201\"} "
                   "1") != std::string::npos;
      },
      milliseconds(10000)))
      << agent_text << coordinator_text;
  // Two steps after FROM: the failed RUN ran, the COPY ran or (this agent uses the host's
  // container storage) came from an earlier run's cache.
  auto cache_steps = [&](const std::string& result) {
    const std::string series =
        "\nmanifold_agent_cache_steps_total{" + p + ",result=\"" + result + "\"} ";
    size_t at = agent_text.find(series);
    return at == std::string::npos ? -1 : std::stod(agent_text.substr(at + series.size()));
  };
  EXPECT_GE(cache_steps("miss"), 1) << agent_text;
  EXPECT_EQ(cache_steps("hit") + cache_steps("miss"), 2) << agent_text;

  // Every name the ops files query, against what the two processes export.
  std::string queries;
  json dashboard =
      json::parse(ReadFile(SourceDir() + "/ops/grafana/manifold-dashboard.json"), nullptr, false);
  ASSERT_TRUE(dashboard.is_object()) << "the dashboard is not JSON";
  CollectExprs(dashboard, &queries);
  queries += YamlValues(ReadFile(SourceDir() + "/ops/prometheus/alerts.yml"), "expr");
  queries += YamlValues(ReadFile(SourceDir() + "/ops/autoscaling/keda-scaledobject.yaml"), "query");
  std::set<std::string> used = MetricNames(queries);
  // The extraction itself works: names from each file are there.
  for (const char* name :
       {"manifold_jobs_pending", "manifold_agent_registry_uploaded_bytes_total",
        "manifold_agents_lost_total", "manifold_desired_agents", "manifold_registry_requests_total",
        "manifold_agent_registry_requests_total", "manifold_agent_cache_steps_total"}) {
    EXPECT_TRUE(used.count(name)) << name << " not found in the ops files' queries";
  }
  std::vector<Exposition> exports = {ParseExposition(coordinator_text),
                                     ParseExposition(agent_text)};
  for (const std::string& name : used) {
    EXPECT_TRUE(Exported(name, exports))
        << name << " is queried by the ops files but neither the coordinator nor the agent "
        << "exports it";
  }
}

// --log-format json: every line either program writes is a JSON object with time, level
// and msg, and the lines about the build carry its ids as fields.
TEST_F(OpsFilesFarmTest, JsonLogLinesCarryTheIdsOfTheirBuildAndJob) {
  Result<Platform> host = HostPlatform();
  ASSERT_TRUE(host.ok()) << host.status().message();
  ASSERT_TRUE(WaitFor(
      [&] {
        json agents = json::parse(Get("/v1/agents").body, nullptr, false);
        return agents.is_object() && agents["agents"].size() == 1;
      },
      milliseconds(30000)));
  std::string state;
  uint64_t build_id = RunFailingBuild(host->ToString(), &state);
  ASSERT_EQ(state, "failed");
  json build = json::parse(Get("/v1/builds/" + std::to_string(build_id)).body, nullptr, false);
  ASSERT_TRUE(build.is_object() && build["jobs"].size() == 1) << build.dump();
  uint64_t job_id = build["jobs"][0].value("id", uint64_t{0});
  // The agent logs its result before sending it; stop it so its log is complete.
  agent_.Stop(std::chrono::seconds(15));

  for (const char* program : {"coordinator", "agent"}) {
    SCOPED_TRACE(program);
    std::istringstream lines(ReadFile(dir_.path() + "/" + program + ".log"));
    int lines_about_the_job = 0;
    bool assigned_or_built = false;
    for (std::string line; std::getline(lines, line);) {
      json entry = json::parse(line, nullptr, false);
      ASSERT_TRUE(entry.is_object()) << "not a JSON line: " << line;
      for (const char* key : {"time", "level", "msg"}) {
        ASSERT_TRUE(entry.contains(key) && entry[key].is_string()) << key << " missing: " << line;
      }
      if (std::string(program) == "agent") {
        EXPECT_EQ(entry.value("agent", ""), "ops-agent") << line;
      }
      if (entry["msg"].get<std::string>().rfind("job " + std::to_string(job_id) + " ", 0) != 0) {
        continue;
      }
      ++lines_about_the_job;
      EXPECT_EQ(entry.value("job", uint64_t{0}), job_id) << line;
      EXPECT_EQ(entry.value("attempt", 0), 1) << line;
      if (entry.contains("build")) {
        EXPECT_EQ(entry.value("build", uint64_t{0}), build_id) << line;
        EXPECT_EQ(entry.value("agent", ""), "ops-agent") << line;
        assigned_or_built = true;
      }
    }
    // Coordinator: assigned and failed; agent: building and the failure.
    EXPECT_GE(lines_about_the_job, 2);
    EXPECT_TRUE(assigned_or_built) << "no line carries build, job, attempt and agent";
  }
}

// What an autoscaler reads while builds run, on a farm of two linux/amd64 agents with one
// slot each: the coordinator's pending, running and desired agents (target utilisation 1,
// so desired = pending + running) and GET /v1/agents?platform=...&idle=true, the agents
// scale-in may remove. Three builds whose RUN step sleeps: two run and one waits, then one
// runs on the agent that finished first while the other agent is idle, then all are done.
class TwoAgentFarmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    metrics_port_ = FreeTcpPort();
    FarmOptions options;
    options.agents = {"amd64-1:linux/amd64", "amd64-2:linux/amd64"};
    options.env = {{"MANIFOLD_FARM_SLOTS", "1"},
                   {"MANIFOLD_TARGET_UTILISATION", "1"},
                   {"MANIFOLD_FARM_METRICS_PORT", std::to_string(metrics_port_)}};
    farm_ = std::make_unique<Farm>(std::move(options));
    Status up = farm_->Up();
    ASSERT_TRUE(up.ok()) << up.message();
  }

  void TearDown() override {
    if (!HasFailure() || !farm_) return;
    for (const char* name : {"coordinator", "amd64-1", "amd64-2"}) {
      std::cerr << "---- " << name << " log ----\n" << farm_->LogTail(name) << "\n";
    }
  }

  // GET /v1/agents with `query`: the status and the ids listed.
  std::pair<int, std::set<std::string>> Agents(const std::string& query) {
    Result<HttpResponse> response = farm_->Api("GET", "/v1/agents" + query);
    if (!response.ok()) return {0, {}};
    std::set<std::string> ids;
    json body = json::parse(response->body, nullptr, false);
    if (body.is_object() && body["agents"].is_array()) {
      for (const json& agent : body["agents"]) ids.insert(agent.value("id", ""));
    }
    return {response->status, ids};
  }
  std::set<std::string> Idle() { return Agents("?platform=linux/amd64&idle=true").second; }

  // Whether the coordinator's /metrics shows these linux/amd64 figures; `text` gets it.
  bool Shows(int pending, int running, int desired, std::string* text) {
    *text = Scrape(metrics_port_);
    const std::string p = "{platform=\"linux/amd64\"} ";
    return text->find("manifold_jobs_pending" + p + std::to_string(pending) + "\n") !=
               std::string::npos &&
           text->find("manifold_jobs_running" + p + std::to_string(running) + "\n") !=
               std::string::npos &&
           text->find("manifold_desired_agents" + p + std::to_string(desired) + "\n") !=
               std::string::npos;
  }

  uint64_t SubmitSlow(const std::string& tag) {
    std::string dir = SourceDir() + "/examples/slow";
    std::string context;
    EXPECT_TRUE(WriteTarFromDirectory(dir, {}, &context).ok());
    std::string digest = Sha256Digest(context);
    Result<HttpResponse> put = farm_->Api("PUT", "/v1/contexts/" + digest, context);
    EXPECT_TRUE(put.ok() && put->status / 100 == 2);
    json request = {{"platforms", {"linux/amd64"}},
                    {"tags", {farm_->registry() + "/slow:" + tag}},
                    {"context", digest},
                    {"dockerfile", ReadFile(dir + "/Dockerfile")},
                    {"build_args", {{"SLEEP", "10"}}},
                    // Each build must really run its RUN step, not take it from the cache.
                    {"no_cache", true}};
    Result<HttpResponse> post = farm_->Api("POST", "/v1/builds", request.dump());
    EXPECT_TRUE(post.ok() && post->status == 201) << (post.ok() ? post->body : "");
    json created = post.ok() ? json::parse(post->body, nullptr, false) : json();
    return created.is_object() ? created.value("id", uint64_t{0}) : 0;
  }

  std::unique_ptr<Farm> farm_;
  int metrics_port_ = 0;
};

TEST_F(TwoAgentFarmTest, MetricsAndIdleAgentsFollowTheBuilds) {
  const std::set<std::string> both = {"amd64-1", "amd64-2"};
  EXPECT_EQ(Idle(), both);
  EXPECT_EQ(Agents("?platform=linux/arm64&idle=true").second, std::set<std::string>{});
  EXPECT_EQ(Agents("?idle=false").second, std::set<std::string>{});
  EXPECT_EQ(Agents("?platform=linux/sparc").first, 400);
  EXPECT_EQ(Agents("?idle=yes").first, 400);

  std::vector<uint64_t> builds = {SubmitSlow("1"), SubmitSlow("2"), SubmitSlow("3")};
  std::string text;
  // Both agents busy and one job waiting: nothing may be removed; three agents wanted.
  ASSERT_TRUE(WaitFor([&] { return Shows(1, 2, 3, &text) && Idle().empty(); }, milliseconds(120000),
                      milliseconds(100)))
      << text;
  EXPECT_EQ(Agents("?platform=linux/amd64&idle=false").second, both);
  std::cout << "---- coordinator /metrics during the builds (manifold_ samples) ----\n";
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("manifold_", 0) == 0 && line.find("_bucket") == std::string::npos) {
      std::cout << line << "\n";
    }
  }

  // The third build runs on one agent; the other is idle and is the one to remove.
  ASSERT_TRUE(WaitFor([&] { return Shows(0, 1, 1, &text) && Idle().size() == 1; },
                      milliseconds(180000), milliseconds(100)))
      << text;
  std::set<std::string> idle = Idle();
  Result<json> third = farm_->GetBuild(builds[2]);
  ASSERT_TRUE(third.ok()) << third.status().message();
  std::string busy_agent = (*third)["jobs"][0].value("agent", "");
  ASSERT_EQ(idle.size(), 1u);
  EXPECT_TRUE(both.count(busy_agent)) << third->dump();
  EXPECT_FALSE(idle.count(busy_agent)) << busy_agent << " runs a job but is listed idle";

  // All done: no work, no agent wanted, both removable.
  // Unfinished builds are counted from the database every few seconds, finished ones as
  // they end.
  ASSERT_TRUE(WaitFor(
      [&] {
        return Shows(0, 0, 0, &text) && Idle() == both &&
               text.find("manifold_builds{state=\"succeeded\"} 3\n") != std::string::npos &&
               text.find("manifold_builds_total{result=\"succeeded\"} 3\n") != std::string::npos;
      },
      milliseconds(180000), milliseconds(100)))
      << text;
  for (uint64_t id : builds) {
    json build;
    ASSERT_TRUE(WaitFor(
        [&] {
          Result<json> got = farm_->GetBuild(id);
          if (got.ok()) build = *got;
          std::string state = got.ok() ? build.value("state", "") : "";
          return state == "succeeded" || state == "failed" || state == "canceled";
        },
        milliseconds(60000)))
        << build.dump();
    EXPECT_EQ(build.value("state", ""), "succeeded") << build.dump();
  }

  // `manifold builds` (and its alias `ls`) lists them, newest first, with a duration.
  CommandResult listed = farm_->Manifold({"builds"});
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_EQ(listed.output.rfind("ID ", 0), 0u) << listed.output;
  EXPECT_NE(listed.output.find("DURATION"), std::string::npos) << listed.output;
  size_t previous = 0;
  for (auto it = builds.rbegin(); it != builds.rend(); ++it) {
    size_t row = listed.output.find("\n" + std::to_string(*it) + " ");
    ASSERT_NE(row, std::string::npos) << *it << " missing:\n" << listed.output;
    EXPECT_GT(row, previous) << listed.output;
    previous = row;
    std::string line = listed.output.substr(row + 1, listed.output.find('\n', row + 1) - row - 1);
    for (const char* cell : {"succeeded", "linux/amd64", "/slow:"}) {
      EXPECT_NE(line.find(cell), std::string::npos) << cell << " missing from: " << line;
    }
    EXPECT_TRUE(std::regex_search(line, std::regex(" [0-9]+s +[0-9]+[smhd]$"))) << line;
  }
  CommandResult alias = farm_->Manifold({"ls"});
  EXPECT_EQ(alias.exit_code, 0) << alias.output;
  EXPECT_EQ(alias.output.substr(0, alias.output.find('\n')),
            listed.output.substr(0, listed.output.find('\n')));
}

// `manifold build` with its stdout on a pseudo-terminal (util-linux `script`) draws the
// live per-platform view and redraws it in place; `--progress plain` there, and any
// output that is not a terminal (every other test), gets plain lines.
TEST_F(TwoAgentFarmTest, BuildOnATerminalRedrawsAPerPlatformView) {
  if (RunCommand({"script", "--version"}, milliseconds(10000)).exit_code != 0) {
    GTEST_SKIP() << "script (util-linux) is not installed";
  }
  auto on_terminal = [&](const std::string& tag, const std::string& progress) {
    std::string command = "'" + BinaryDir() + "/cli/manifold' build --platform linux/amd64 " +
                          "--no-cache --build-arg SLEEP=3 -t " + farm_->registry() +
                          "/slow:" + tag + " " + progress + " '" + SourceDir() + "/examples/slow'";
    return RunCommand({"script", "-qfec", command, "/dev/null"}, milliseconds(180000),
                      {{"MANIFOLD_SERVER", farm_->server_url()}});
  };
  CommandResult tty = on_terminal("tty", "");
  ASSERT_EQ(tty.exit_code, 0) << tty.output;
  const std::string& out = tty.output;
  // Frames: the first is drawn, later ones move back up over it ("ESC [ n F") first.
  EXPECT_NE(out.find("\x1b[2K[+] Building "), std::string::npos) << out;
  // (over as many lines as the last frame had: two, or three with a log line under the
  // platform)
  EXPECT_TRUE(out.find("\x1b[2F\x1b[2K[+] Building ") != std::string::npos ||
              out.find("\x1b[3F\x1b[2K[+] Building ") != std::string::npos)
      << out;
  EXPECT_NE(out.find("building on amd64-"), std::string::npos) << out;
  EXPECT_NE(out.find(" (native)"), std::string::npos) << out;
  size_t last_frame = out.rfind("[+] Built ");
  ASSERT_NE(last_frame, std::string::npos) << out;
  std::string tail = out.substr(last_frame);
  EXPECT_NE(tail.find("(1/1 platforms done)  build "), std::string::npos) << tail;
  EXPECT_NE(tail.find("succeeded"), std::string::npos) << tail;
  EXPECT_TRUE(std::regex_search(tail, std::regex("✔  linux/amd64 +[0-9.]+s  pushed sha256:")))
      << tail;
  // The index digest stays the last line, for scripts.
  EXPECT_TRUE(std::regex_search(tail, std::regex("\nsha256:[0-9a-f]{64}\r?\n$"))) << tail;

  CommandResult plain = on_terminal("plain", "--progress plain");
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  EXPECT_EQ(plain.output.find("\x1b["), std::string::npos) << plain.output;
  EXPECT_NE(plain.output.find("[linux/amd64] "), std::string::npos) << plain.output;
}

}  // namespace
}  // namespace manifold::test
