#include "bench/bench_farm.h"

#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "agent/synthetic_builder.h"
#include "common/digest.h"
#include "common/http_client.h"
#include "common/layout.h"
#include "common/reference.h"
#include "common/registry.h"
#include "common/tar.h"
#include "tests/support/ports.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace manifold::bench {
namespace {

using nlohmann::json;

// The farm's one real agent; drained as soon as the farm is up.
constexpr char kRealAgent[] = "drained-1";
constexpr char kDockerfile[] = "FROM scratch\n";

std::map<std::string, std::string> FarmEnv(std::map<std::string, std::string> env, int agent_port) {
  env["MANIFOLD_FARM_AGENT_PORT"] = std::to_string(agent_port);
  env["MANIFOLD_FARM_BACKEND"] = "synthetic";
  // The simulated agents speak plaintext, which the coordinator takes on loopback only; the
  // figures therefore leave out CURVE's cost.
  env["MANIFOLD_FARM_PLAINTEXT"] = "1";
  return env;
}

int PortOf(const std::string& database_url) {
  std::smatch match;
  static const std::regex port(R"(@127\.0\.0\.1:(\d+)/)");
  if (!std::regex_search(database_url, match, port)) return -1;
  return std::stoi(match[1]);
}

}  // namespace

Result<ProcessSample> SampleProcess(pid_t pid) {
  std::ifstream stat_file("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return Status::NotFound("no process " + std::to_string(pid));
  std::istringstream fields(stat.substr(paren + 2));
  std::vector<std::string> values;
  for (std::string field; fields >> field;) values.push_back(field);
  if (values.size() < 13) return Status::Internal("cannot parse /proc/PID/stat");
  // After the command come state (field 3) ... utime (14) and stime (15).
  double ticks = std::stod(values[11]) + std::stod(values[12]);
  ProcessSample sample;
  sample.cpu_seconds = ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
  std::ifstream status_file("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status_file, line);) {
    if (line.rfind("VmRSS:", 0) == 0) sample.rss_bytes = std::stoull(line.substr(6)) * 1024;
  }
  return sample;
}

BenchFarm::BenchFarm(std::map<std::string, std::string> env)
    : agent_port_(test::FreeTcpPort()),
      farm_(test::FarmOptions{{std::string(kRealAgent) + ":linux/amd64"},
                              FarmEnv(std::move(env), agent_port_)}) {}

Result<std::string> BenchFarm::Psql(const std::string& database, const std::string& sql) const {
  test::CommandResult result = test::RunCommand(
      {"psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
       std::to_string(PortOf(farm_.database_url())), "-U", "postgres", "-d", database, "-c", sql},
      std::chrono::seconds(60));
  if (result.exit_code != 0) return Status::Internal("psql: " + sql + ": " + result.output);
  return result.output;
}

Result<uint64_t> BenchFarm::DatabaseBytes() const {
  Result<std::string> out = Psql("manifold", "SELECT pg_database_size('manifold')");
  if (!out.ok()) return out.status();
  return std::stoull(*out);
}

Result<std::string> BenchFarm::TableRows() const {
  Result<std::string> out =
      Psql("manifold",
           "SELECT string_agg(t || ' ' || n, ', ') FROM (VALUES "
           "('builds', (SELECT count(*) FROM builds)), ('jobs', (SELECT count(*) FROM jobs)), "
           "('job_events', (SELECT count(*) FROM job_events)), "
           "('log_chunks', (SELECT count(*) FROM log_chunks)), "
           "('agents', (SELECT count(*) FROM agents))) AS v(t, n)");
  if (!out.ok()) return out.status();
  std::string rows = *out;
  while (!rows.empty() && rows.back() == '\n') rows.pop_back();
  return rows;
}

Status BenchFarm::WaitReady() const {
  bool ready = test::WaitFor(
      [&] {
        Result<HttpResponse> response = farm_.Api("GET", "/readyz");
        return response.ok() && response->status == 200;
      },
      std::chrono::seconds(60), std::chrono::milliseconds(100));
  if (!ready)
    return Status::Unavailable("the coordinator is not ready: " + farm_.LogTail("coordinator"));
  return Status::Ok();
}

Status BenchFarm::Up(const std::vector<Platform>& platforms, const std::string& repository) {
  repository_ = repository;
  if (Status up = farm_.Up(); !up.ok()) return up;
  Result<HttpResponse> drain =
      farm_.Api("POST", std::string("/v1/agents/") + kRealAgent + "/drain");
  if (!drain.ok()) return drain.status();
  bool gone = test::WaitFor(
      [&] {
        Result<HttpResponse> agents = farm_.Api("GET", "/v1/agents");
        if (!agents.ok()) return false;
        json body = json::parse(agents->body, nullptr, false);
        return body.is_object() && body["agents"].empty();
      },
      std::chrono::seconds(60), std::chrono::milliseconds(100));
  if (!gone) return Status::Unavailable("the farm's own agent did not drain away");

  // pg_stat_statements must be preloaded: a restart of PostgreSQL, which the coordinator
  // rides out like any database restart.
  Result<std::string> set =
      Psql("postgres", "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'");
  if (!set.ok()) return set.status();
  if (Status s = farm_.Stop("postgres"); !s.ok()) return s;
  if (Status s = farm_.Start("postgres"); !s.ok()) return s;
  for (const char* database : {"postgres", "manifold"}) {
    Result<std::string> created =
        Psql(database, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
    if (!created.ok()) return created.status();
  }
  if (Status ready = WaitReady(); !ready.ok()) return ready;

  // One synthetic image per platform, made by the agent's own synthetic backend.
  test::TempDir scratch("manifold-bench");
  SyntheticBuilder builder(SyntheticBuildOptions{1024, true, std::chrono::milliseconds(0)});
  tag_client_ = std::make_unique<RegistryClient>(farm_.registry());
  const RegistryClient& registry = *tag_client_;
  for (const Platform& platform : platforms) {
    manifold::BuildRequest request;
    request.platform = platform;
    request.image_name = "bench";
    request.layout_dir = scratch.path() + "/" + platform.architecture + platform.variant;
    Status built = builder.Build(
        request, [](std::string_view) {}, nullptr);
    if (!built.ok()) return built;
    Result<OciLayoutImage> image = OpenLayoutImage(request.layout_dir);
    if (!image.ok()) return image.status();
    Result<Descriptor> pushed = registry.PushLayout(*image, repository);
    if (!pushed.ok()) return pushed.status();
    images_[platform] =
        ImageDescriptor{pushed->media_type, pushed->digest, static_cast<uint64_t>(pushed->size)};
  }

  // One build context, uploaded once, for every build.
  std::string context_dir = scratch.path() + "/context";
  std::filesystem::create_directories(context_dir);
  std::ofstream(context_dir + "/Dockerfile") << kDockerfile;
  std::string archive;
  if (Status tar = WriteTarFromDirectory(context_dir, nullptr, &archive); !tar.ok()) return tar;
  context_digest_ = Sha256Digest(archive);
  HttpRequest put;
  put.method = "PUT";
  put.url = farm_.server_url() + "/v1/contexts/" + context_digest_;
  put.headers = {{"Content-Type", "application/x-tar"}};
  put.body = archive;
  Result<HttpResponse> uploaded = HttpClient().Send(put);
  if (!uploaded.ok()) return uploaded.status();
  if (uploaded->status != 201 && uploaded->status != 200) {
    return Status::Internal("context upload answered " + std::to_string(uploaded->status) + ": " +
                            uploaded->body);
  }
  return Status::Ok();
}

Result<SubmittedBuild> BenchFarm::SubmitBuild(const std::vector<Platform>& platforms,
                                              const std::string& tag) const {
  json body = {{"platforms", json::array()},
               {"tags", {registry() + "/" + repository_ + ":" + tag}},
               {"context", context_digest_},
               {"dockerfile", kDockerfile}};
  for (const Platform& platform : platforms) body["platforms"].push_back(platform.ToString());
  HttpRequest request;
  request.method = "POST";
  request.url = farm_.server_url() + "/v1/builds";
  request.headers = {{"Content-Type", "application/json"}};
  request.body = body.dump();
  request.timeout_ms = 30000;
  Result<HttpResponse> response = HttpClient().Send(request);
  if (!response.ok()) return response.status();
  json build = json::parse(response->body, nullptr, false);
  if (response->status != 201 || !build.is_object() || !build.contains("jobs")) {
    return Status::Internal("POST /v1/builds answered " + std::to_string(response->status) + ": " +
                            response->body);
  }
  SubmittedBuild submitted;
  submitted.build_id = build.value("id", uint64_t{0});
  for (const json& job : build["jobs"]) submitted.job_ids.push_back(job.value("id", uint64_t{0}));
  return submitted;
}

Result<std::string> BenchFarm::BuildState(uint64_t build_id) const {
  Result<nlohmann::json> build = farm_.GetBuild(build_id);
  if (!build.ok()) return build.status();
  return build->value("state", "");
}

bool BenchFarm::TagExists(const std::string& tag) const {
  return tag_client_ != nullptr && tag_client_->GetManifest(repository_, tag).ok();
}

Result<DbCounters> BenchFarm::ReadDbCounters() const {
  Result<std::string> out = Psql(
      "postgres",
      "SELECT (SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = "
      "'manifold'), (SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_database d "
      "ON d.oid = s.dbid WHERE d.datname = 'manifold' AND s.query !~* "
      "'^\\s*(begin|commit|rollback|start transaction)')");
  if (!out.ok()) return out.status();
  DbCounters counters;
  if (sscanf(out->c_str(), "%lu|%lu", &counters.transactions, &counters.statements) != 2) {
    return Status::Internal("cannot read PostgreSQL's counters from: " + *out);
  }
  Result<std::string> builds = Psql("manifold",
                                    "SELECT count(*) FILTER (WHERE state = 'succeeded'), "
                                    "count(*) FILTER (WHERE state = 'merging') FROM builds");
  if (!builds.ok()) return builds.status();
  if (sscanf(builds->c_str(), "%lu|%lu", &counters.builds_succeeded, &counters.builds_merging) !=
      2) {
    return Status::Internal("cannot read the builds' states from: " + *builds);
  }
  return counters;
}

Result<double> BenchFarm::RunPgbench(int seconds, int clients, std::string* command) const {
  Result<std::string> exists =
      Psql("postgres", "SELECT 1 FROM pg_database WHERE datname = 'pgbench'");
  if (!exists.ok()) return exists.status();
  if (exists->empty()) {
    if (Result<std::string> s = Psql("postgres", "CREATE DATABASE pgbench"); !s.ok())
      return s.status();
  }
  std::string port = std::to_string(PortOf(farm_.database_url()));
  std::vector<std::string> connect = {"-h", "127.0.0.1", "-p", port, "-U", "postgres"};
  std::vector<std::string> init = {"pgbench", "-i", "-q", "-s", "1"};
  init.insert(init.end(), connect.begin(), connect.end());
  init.push_back("pgbench");
  test::CommandResult initialised = test::RunCommand(init, std::chrono::seconds(120));
  if (initialised.exit_code != 0) return Status::Internal("pgbench -i: " + initialised.output);
  std::vector<std::string> run = {"pgbench", "-N",
                                  "-T",      std::to_string(seconds),
                                  "-c",      std::to_string(clients),
                                  "-j",      std::to_string(clients)};
  run.insert(run.end(), connect.begin(), connect.end());
  run.push_back("pgbench");
  *command = "";
  for (const std::string& arg : run) *command += (command->empty() ? "" : " ") + arg;
  test::CommandResult result = test::RunCommand(run, std::chrono::seconds(seconds + 120));
  std::smatch match;
  static const std::regex tps(R"(tps = ([0-9.]+) \(without initial connection time\))");
  if (result.exit_code != 0 || !std::regex_search(result.output, match, tps)) {
    return Status::Internal("pgbench -N: " + result.output);
  }
  return std::stod(match[1]);
}

Status BenchFarm::RestartCoordinator() {
  if (Status s = farm_.Stop("coordinator"); !s.ok()) return s;
  if (Status s = farm_.Start("coordinator"); !s.ok()) return s;
  return WaitReady();
}

}  // namespace manifold::bench
