#include "tests/support/registry_server.h"

#include <fstream>

#include "common/http_client.h"
#include "tests/support/ports.h"
#include "tests/support/wait.h"

namespace manifold::test {
namespace {

Status WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) return Status::Internal("cannot write " + path);
  return Status::Ok();
}

std::string Config(const std::string& dir, int port, bool auth) {
  std::string config =
      "version: 0.1\n"
      "log:\n"
      "  level: info\n"
      "storage:\n"
      "  filesystem:\n"
      "    rootdirectory: " +
      dir +
      "/storage\n"
      "  delete:\n"
      "    enabled: true\n"
      "  maintenance:\n"
      "    uploadpurging:\n"
      "      enabled: false\n"
      "http:\n"
      "  addr: 127.0.0.1:" +
      std::to_string(port) +
      "\n"
      "  headers:\n"
      "    X-Content-Type-Options: [nosniff]\n";
  if (auth) {
    config +=
        "auth:\n"
        "  htpasswd:\n"
        "    realm: manifold-test\n"
        "    path: " +
        dir + "/htpasswd\n";
  }
  return config;
}

}  // namespace

RegistryServer::~RegistryServer() { Stop(); }

Status RegistryServer::Start(const RegistryServerOptions& options) {
  if (process_.Running()) return Status::FailedPrecondition("registry already running");
  dir_ = std::make_unique<TempDir>("manifold-registry");
  const bool auth = !options.htpasswd.empty();
  if (auth) {
    Status s = WriteFile(dir_->path() + "/htpasswd", options.htpasswd);
    if (!s.ok()) return s;
  }
  const std::string config_path = dir_->path() + "/config.yml";
  const std::string log_path = dir_->path() + "/registry.log";
  HttpClient http;
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = FreeTcpPort();
    if (port_ <= 0) return Status::Internal("no free TCP port on 127.0.0.1");
    Status s = WriteFile(config_path, Config(dir_->path(), port_, auth));
    if (!s.ok()) return s;
    s = process_.Start({"docker-registry", "serve", config_path}, {}, log_path);
    if (!s.ok()) return s;
    HttpRequest probe;
    probe.url = "http://" + host() + "/v2/";
    probe.timeout_ms = 1000;
    probe.connect_timeout_ms = 200;
    bool up = WaitFor(
        [&] {
          if (!process_.Running()) return true;  // stop waiting; checked below
          Result<HttpResponse> r = http.Send(probe);
          return r.ok() && r->status > 0;
        },
        std::chrono::seconds(15), std::chrono::milliseconds(25));
    if (up && process_.Running()) return Status::Ok();
    const std::string log = process_.LogTail();
    process_.Stop();
    if (log.find("address already in use") == std::string::npos) {
      return Status::Unavailable("docker-registry did not come up on " + host() +
                                 " within 15 s; its log ends with:\n" + log);
    }
  }
  return Status::Unavailable("docker-registry could not bind a free port in 3 attempts");
}

void RegistryServer::Stop() { process_.Stop(); }

std::string RegistryServer::host() const { return "127.0.0.1:" + std::to_string(port_); }

std::string RegistryServer::storage_dir() const { return dir_ ? dir_->path() + "/storage" : ""; }

}  // namespace manifold::test
