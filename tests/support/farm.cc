#include "tests/support/farm.h"

#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "common/digest.h"
#include "common/tar.h"
#include "tests/support/ports.h"
#include "tests/support/wait.h"

namespace manifold::test {

std::string SourceDir() {
#ifdef MANIFOLD_SOURCE_DIR
  return MANIFOLD_SOURCE_DIR;
#else
  return ".";
#endif
}

std::string BinaryDir() {
#ifdef MANIFOLD_BINARY_DIR
  return MANIFOLD_BINARY_DIR;
#else
  return "build";
#endif
}

Farm::~Farm() { Down(); }

std::map<std::string, std::string> Farm::Env() const {
  std::map<std::string, std::string> env = ports_;
  env["MANIFOLD_FARM_DIR"] = farm_dir();
  env["MANIFOLD_BUILD_DIR"] = BinaryDir();
  if (!options_.agents.empty()) {
    std::string agents;
    for (const std::string& agent : options_.agents) agents += (agents.empty() ? "" : " ") + agent;
    env["MANIFOLD_FARM_AGENTS"] = agents;
  }
  for (const auto& [key, value] : options_.env) env[key] = value;
  return env;
}

Status Farm::Up(std::chrono::seconds timeout) {
  dir_ = std::make_unique<TempDir>("manifold-farm");
  // PostgreSQL runs as its own user, which must be able to reach its data dir inside.
  chmod(dir_->path().c_str(), 0755);
  ports_ = {{"MANIFOLD_FARM_PG_PORT", std::to_string(FreeTcpPort())},
            {"MANIFOLD_FARM_REGISTRY_PORT", std::to_string(FreeTcpPort())},
            {"MANIFOLD_FARM_API_PORT", std::to_string(FreeTcpPort())},
            {"MANIFOLD_FARM_AGENT_PORT", std::to_string(FreeTcpPort())},
            {"MANIFOLD_FARM_METRICS_PORT", std::to_string(FreeTcpPort())},
            // coordinator-2's, used only with MANIFOLD_FARM_COORDINATORS=2.
            {"MANIFOLD_FARM_API_PORT_2", std::to_string(FreeTcpPort())},
            {"MANIFOLD_FARM_AGENT_PORT_2", std::to_string(FreeTcpPort())},
            {"MANIFOLD_FARM_METRICS_PORT_2", std::to_string(FreeTcpPort())}};
  up_ = true;  // from here on, Down() has something to stop even if `up` fails half-way
  CommandResult result =
      RunCommand({SourceDir() + "/ops/farm.sh", "up"},
                 std::chrono::duration_cast<std::chrono::milliseconds>(timeout), Env());
  if (result.exit_code != 0) {
    return Status::Unavailable("ops/farm.sh up exited with " + std::to_string(result.exit_code) +
                               ":\n" + result.output);
  }
  std::ifstream env_file(dir_->path() + "/farm/farm.env");
  std::string line;
  while (std::getline(env_file, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "MANIFOLD_SERVER") {
      server_urls_ = value;
      server_url_ = value.substr(0, value.find(','));
    }
    if (key == "MANIFOLD_REGISTRY") registry_ = value;
    if (key == "MANIFOLD_DATABASE_URL") database_url_ = value;
  }
  if (server_url_.empty() || registry_.empty() || database_url_.empty()) {
    return Status::Internal(
        "farm.env lacks MANIFOLD_SERVER, MANIFOLD_REGISTRY or "
        "MANIFOLD_DATABASE_URL:\n" +
        result.output);
  }
  return Status::Ok();
}

void Farm::Down() {
  if (!up_) return;
  up_ = false;
  RunCommand({SourceDir() + "/ops/farm.sh", "down"}, std::chrono::seconds(90), Env());
}

Status Farm::Script(const std::string& command, const std::string& name,
                    std::chrono::seconds timeout,
                    const std::map<std::string, std::string>& extra_env) const {
  if (!up_) return Status::FailedPrecondition("the farm is not up");
  std::map<std::string, std::string> env = Env();
  for (const auto& [key, value] : extra_env) env[key] = value;
  CommandResult result =
      RunCommand({SourceDir() + "/ops/farm.sh", command, name},
                 std::chrono::duration_cast<std::chrono::milliseconds>(timeout), env);
  if (result.exit_code != 0) {
    return Status::Unavailable("ops/farm.sh " + command + " " + name + " exited with " +
                               std::to_string(result.exit_code) + ":\n" + result.output);
  }
  return Status::Ok();
}

Status Farm::Stop(const std::string& name, std::chrono::seconds timeout) {
  return Script("stop", name, timeout);
}

Status Farm::Kill(const std::string& name) {
  return Script("kill", name, std::chrono::seconds(30));
}

Status Farm::Start(const std::string& name, std::chrono::seconds timeout) {
  return Script("start", name, timeout);
}

Status Farm::Start(const std::string& name, const std::map<std::string, std::string>& env,
                   std::chrono::seconds timeout) {
  return Script("start", name, timeout, env);
}

pid_t Farm::Pid(const std::string& name) const {
  if (!dir_) return 0;
  std::ifstream pid_file(dir_->path() + "/farm/pids/" + name + ".pid");
  long pid = 0;
  if (!(pid_file >> pid) || pid <= 0) return 0;
  // A pid file can outlive its process and the pid be reused: the process must still be
  // this farm's, which its command line shows (a zombie's is empty).
  std::string marker = dir_->path() + "/farm";
  if (name == "postgres") marker += "/postgres";
  char resolved[PATH_MAX];
  if (realpath(marker.c_str(), resolved) != nullptr) marker = resolved;
  std::ifstream cmdline_file("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::stringstream cmdline;
  cmdline << cmdline_file.rdbuf();
  if (cmdline.str().find(marker) == std::string::npos) return 0;
  return static_cast<pid_t>(pid);
}

Result<HttpResponse> Farm::Api(const std::string& method, const std::string& path,
                               const std::string& body) const {
  HttpRequest request;
  request.method = method;
  request.url = server_url_ + path;
  request.body = body;
  request.timeout_ms = 10000;
  request.connect_timeout_ms = 2000;
  return HttpClient().Send(request);
}

Result<uint64_t> Farm::SubmitBuild(const std::string& dockerfile, const std::string& tag) const {
  return SubmitBuild(dockerfile, tag, {"linux/amd64"});
}

Result<uint64_t> Farm::SubmitBuild(const std::string& dockerfile, const std::string& tag,
                                   const std::vector<std::string>& platforms) const {
  TempDir context_dir;
  std::ofstream(context_dir.path() + "/hello.sh") << "#!/bin/sh\necho hello\n";
  std::string context;
  if (Status packed = WriteTarFromDirectory(context_dir.path(), {}, &context); !packed.ok()) {
    return packed;
  }
  std::string digest = Sha256Digest(context);
  Result<HttpResponse> put = Api("PUT", "/v1/contexts/" + digest, context);
  if (!put.ok()) return put.status();
  if (put->status != 201) return Status::Internal("uploading the context: HTTP " + put->body);
  nlohmann::json request = {{"platforms", platforms},
                            {"tags", {registry_ + "/" + tag}},
                            {"context", digest},
                            {"dockerfile", dockerfile}};
  Result<HttpResponse> post = Api("POST", "/v1/builds", request.dump());
  if (!post.ok()) return post.status();
  nlohmann::json created = nlohmann::json::parse(post->body, nullptr, false);
  if (post->status != 201 || !created.is_object() || !created["id"].is_number_unsigned()) {
    return Status::Internal("starting the build: HTTP " + std::to_string(post->status) + " " +
                            post->body);
  }
  return created["id"].get<uint64_t>();
}

Result<nlohmann::json> Farm::GetBuild(uint64_t id) const {
  Result<HttpResponse> response = Api("GET", "/v1/builds/" + std::to_string(id));
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return Status::Unavailable("GET /v1/builds/" + std::to_string(id) + " answered " +
                               std::to_string(response->status) + ": " + response->body);
  }
  nlohmann::json build = nlohmann::json::parse(response->body, nullptr, false);
  if (!build.is_object()) {
    return Status::Internal("GET /v1/builds/" + std::to_string(id) +
                            " answered no JSON object: " + response->body);
  }
  return build;
}

nlohmann::json Farm::FinishedBuild(uint64_t id, std::chrono::milliseconds timeout) const {
  nlohmann::json build;
  WaitFor(
      [&] {
        Result<nlohmann::json> got = GetBuild(id);
        if (!got.ok()) return false;
        build = *got;
        std::string state = build.value("state", "");
        return state == "succeeded" || state == "failed" || state == "canceled";
      },
      timeout, std::chrono::milliseconds(200));
  return build;
}

std::unique_ptr<Farm> StartSuiteFarm(FarmOptions options) {
  auto farm = std::make_unique<Farm>(std::move(options));
  Status up = farm->Up();
  if (!up.ok()) {
    std::cerr << "farm did not come up: " << up.message() << "\n";
    return nullptr;
  }
  return farm;
}

Result<std::string> Farm::Metrics(const std::string& name) const {
  std::string address;
  if (name == "coordinator") {
    auto port = ports_.find("MANIFOLD_FARM_METRICS_PORT");
    if (port != ports_.end()) address = "127.0.0.1:" + port->second;
  } else {
    // The agent's start-up line: "metrics on 127.0.0.1:PORT".
    const std::string log = Log(name);
    const std::string marker = "metrics on ";
    size_t at = log.rfind(marker);
    if (at != std::string::npos) {
      at += marker.size();
      address = log.substr(at, log.find_first_of(" \n\"", at) - at);
    }
  }
  if (address.empty()) return Status::NotFound("no metrics address known for " + name);
  HttpRequest request;
  request.url = "http://" + address + "/metrics";
  request.timeout_ms = 10000;
  request.connect_timeout_ms = 2000;
  Result<HttpResponse> response = HttpClient().Send(request);
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return Status::Unavailable("GET " + request.url + " answered " +
                               std::to_string(response->status));
  }
  return response->body;
}

CommandResult Farm::Manifold(const std::vector<std::string>& args,
                             std::chrono::seconds timeout) const {
  std::vector<std::string> argv = {BinaryDir() + "/cli/manifold"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, std::chrono::duration_cast<std::chrono::milliseconds>(timeout),
                    {{"MANIFOLD_SERVER", server_urls_}});
}

double MetricSample(const std::string& text, const std::string& series) {
  size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

std::string Farm::Log(const std::string& name) const {
  if (!dir_) return "";
  std::ifstream in(dir_->path() + "/farm/logs/" + name + ".log", std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Farm::LogTail(const std::string& name) const {
  if (!dir_) return "";
  return ReadFileTail(dir_->path() + "/farm/logs/" + name + ".log", 4096);
}

}  // namespace manifold::test
