#include "tests/support/coordinator_process.h"

#include "tests/support/farm.h"
#include "tests/support/ports.h"

namespace manifold::test {
namespace {

HttpResponse Send(const std::string& method, const std::string& url, const std::string& body,
                  const std::string& type) {
  HttpRequest request;
  request.method = method;
  request.url = url;
  request.body = body;
  request.headers = {{"Content-Type", type}};
  request.timeout_ms = 5000;
  Result<HttpResponse> response = HttpClient().Send(request);
  return response.ok() ? *response : HttpResponse{};
}

}  // namespace

CoordinatorProcess::CoordinatorProcess(std::string name, std::string database_url,
                                       std::string state_dir, std::vector<std::string> flags,
                                       std::string log_file)
    : name_(std::move(name)),
      database_url_(std::move(database_url)),
      state_dir_(std::move(state_dir)),
      flags_(std::move(flags)),
      log_file_(std::move(log_file)),
      api_port_(FreeTcpPort()),
      metrics_port_(FreeTcpPort()),
      agent_endpoint_("tcp://127.0.0.1:" + std::to_string(FreeTcpPort())) {}

Status CoordinatorProcess::Start() {
  std::vector<std::string> argv = {BinaryDir() + "/coordinator/manifold-coordinator",
                                   "--database-url",
                                   database_url_,
                                   "--api-listen",
                                   "127.0.0.1:" + std::to_string(api_port_),
                                   "--public-url",
                                   Url(),
                                   "--agent-listen",
                                   agent_endpoint_,
                                   "--metrics-listen",
                                   "127.0.0.1:" + std::to_string(metrics_port_),
                                   "--state-dir",
                                   state_dir_,
                                   "--leader-name",
                                   name_};
  argv.insert(argv.end(), flags_.begin(), flags_.end());
  return process_.Start(argv, {}, log_file_);
}

HttpResponse CoordinatorProcess::Request(const std::string& method, const std::string& path,
                                         const std::string& body, const std::string& type) const {
  return Send(method, Url() + path, body, type);
}

std::string CoordinatorProcess::Metric(const std::string& series) const {
  const std::string body =
      Send("GET", "http://127.0.0.1:" + std::to_string(metrics_port_) + "/metrics", "",
           "text/plain")
          .body;
  size_t at = body.find("\n" + series + " ");
  if (at == std::string::npos) return "";
  at += series.size() + 2;
  return body.substr(at, body.find('\n', at) - at);
}

}  // namespace manifold::test
