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

std::string Config(const std::string& dir, int port, const RegistryServerOptions& options) {
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
      "  addr: " +
      options.bind_address + ":" + std::to_string(port) +
      "\n"
      // Fixed, so that upload sessions (whose state the registry signs) survive a restart.
      "  secret: manifold-test-upload-state-secret\n"
      "  headers:\n"
      "    X-Content-Type-Options: [nosniff]\n";
  if (!options.tls_cert_file.empty()) {
    config += "  tls:\n    certificate: " + options.tls_cert_file +
              "\n    key: " + options.tls_key_file + "\n";
    if (!options.tls_client_ca_file.empty()) {
      config += "    clientcas:\n      - " + options.tls_client_ca_file + "\n";
    }
  }
  if (!options.token_realm.empty()) {
    config += "auth:\n  token:\n    realm: " + options.token_realm +
              "\n    service: " + options.token_service + "\n    issuer: " + options.token_issuer +
              "\n    rootcertbundle: " + options.token_root_cert_file + "\n";
  } else if (!options.htpasswd.empty()) {
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
  options_ = options;
  if (!options.htpasswd.empty()) {
    Status s = WriteFile(dir_->path() + "/htpasswd", options.htpasswd);
    if (!s.ok()) return s;
  }
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = FreeTcpPort();
    if (port_ <= 0) return Status::Internal("no free TCP port on 127.0.0.1");
    Status s = Launch();
    if (s.ok() || s.message().find("address already in use") == std::string::npos) return s;
  }
  return Status::Unavailable("docker-registry could not bind a free port in 3 attempts");
}

Status RegistryServer::Restart() {
  if (!dir_) return Status::FailedPrecondition("registry never started");
  process_.Stop();
  // The port was just released; another process taking it meanwhile fails the restart.
  return Launch();
}

Status RegistryServer::Launch() {
  const std::string config_path = dir_->path() + "/config.yml";
  const std::string log_path = dir_->path() + "/registry.log";
  Status s = WriteFile(config_path, Config(dir_->path(), port_, options_));
  if (!s.ok()) return s;
  s = process_.Start({"docker-registry", "serve", config_path}, {}, log_path);
  if (!s.ok()) return s;
  // Plain HTTP even to a TLS registry: its "400 client sent HTTP to an HTTPS server" is an
  // answer too, and proves it listens.
  HttpClient http;
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
  return Status::Unavailable("docker-registry did not come up on " + host() +
                             " within 15 s; its log ends with:\n" + log);
}

void RegistryServer::Stop() { process_.Stop(); }

std::string RegistryServer::host() const {
  return options_.bind_address + ":" + std::to_string(port_);
}

std::string RegistryServer::storage_dir() const { return dir_ ? dir_->path() + "/storage" : ""; }

Result<TestCertificate> StartTlsRegistry(RegistryServer* registry, const std::string& dir,
                                         RegistryServerOptions options,
                                         bool require_client_certificate) {
  Result<TestCertificate> ca = MakeTestCa(dir);
  if (!ca.ok()) return ca.status();
  Result<TestCertificate> server = MakeServerCertificate(*ca, dir, "registry");
  if (!server.ok()) return server.status();
  options.tls_cert_file = server->cert_file;
  options.tls_key_file = server->key_file;
  if (require_client_certificate) options.tls_client_ca_file = ca->cert_file;
  if (Status started = registry->Start(options); !started.ok()) return started;
  return ca;
}

}  // namespace manifold::test
