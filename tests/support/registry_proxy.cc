#include "tests/support/registry_proxy.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <optional>

#include "tests/support/wait.h"

namespace manifold::test {
namespace {

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// Headers that describe one hop (or that httplib adds for its handlers), not the message.
bool IsHopHeader(const std::string& name) {
  static const char* const kHop[] = {
      "content-length", "transfer-encoding", "connection", "keep-alive", "expect",
      "remote_addr",    "remote_port",       "local_addr", "local_port"};
  const std::string lower = Lower(name);
  return std::find(std::begin(kHop), std::end(kHop), lower) != std::end(kHop);
}

}  // namespace

struct RegistryProxy::Handler {
  // Takes the first canned answer matching the request, using one of its times up.
  static std::optional<CannedAnswer> Take(RegistryProxy* proxy, const httplib::Request& req) {
    std::lock_guard<std::mutex> lock(proxy->mu_);
    for (CannedAnswer& answer : proxy->answers_) {
      if (answer.times == 0) continue;
      if (!answer.method.empty() && answer.method != req.method) continue;
      if (req.target.find(answer.target_contains) == std::string::npos) continue;
      if (answer.times > 0) --answer.times;
      return answer;
    }
    return std::nullopt;
  }

  static void Serve(RegistryProxy* proxy, const httplib::Request& req, httplib::Response& res) {
    ProxiedRequest record{
        req.method,      req.target,     std::chrono::steady_clock::now(), 0, false,
        req.remote_port, req.body.size()};
    std::optional<CannedAnswer> answer = Take(proxy, req);
    if (answer.has_value()) std::this_thread::sleep_for(answer->delay);
    if (answer.has_value() && answer->forward) {
      Forward(proxy->upstream_, req, res);
      for (const auto& [name, value] : answer->headers) res.set_header(name, value);
    } else if (answer.has_value()) {
      res.status = answer->status;
      for (const auto& [name, value] : answer->headers) res.set_header(name, value);
      if (!answer->content_type.empty()) res.set_header("Content-Type", answer->content_type);
      res.body = answer->body;
      record.canned = true;
    } else {
      Forward(proxy->upstream_, req, res);
    }
    if (proxy->relative_locations_ && res.has_header("Location")) {
      std::string location = res.get_header_value("Location");
      const size_t scheme = location.find("://");
      if (scheme != std::string::npos) {
        const size_t path = location.find('/', scheme + 3);
        res.headers.erase("Location");
        res.set_header("Location", path == std::string::npos ? "/" : location.substr(path));
      }
    }
    record.status = res.status;
    std::lock_guard<std::mutex> lock(proxy->mu_);
    proxy->requests_.push_back(record);
  }

  static void Forward(const std::string& upstream, const httplib::Request& req,
                      httplib::Response& res) {
    httplib::Client client("http://" + upstream);
    client.set_connection_timeout(5);
    client.set_read_timeout(60);
    httplib::Request out;
    out.method = req.method;
    out.path = req.target;
    out.body = req.body;
    for (const auto& [name, value] : req.headers) {
      if (!IsHopHeader(name)) out.headers.emplace(name, value);
    }
    httplib::Result result = client.send(out);
    if (!result) {
      res.status = 502;
      res.set_content("proxy: cannot reach " + upstream + ": " + httplib::to_string(result.error()),
                      "text/plain");
      return;
    }
    res.status = result->status;
    for (const auto& [name, value] : result->headers) {
      if (!IsHopHeader(name)) res.headers.emplace(name, value);
    }
    // A HEAD answer's Content-Length describes the body a GET would get; keep it.
    if (req.method == "HEAD" && result->has_header("Content-Length")) {
      res.set_header("Content-Length", result->get_header_value("Content-Length"));
    }
    res.body = result->body;
  }
};

RegistryProxy::RegistryProxy() = default;

RegistryProxy::~RegistryProxy() { Stop(); }

Status RegistryProxy::Start(const std::string& upstream) {
  if (server_) return Status::FailedPrecondition("proxy already started");
  upstream_ = upstream;
  server_ = std::make_unique<httplib::Server>();
  auto serve = [this](const httplib::Request& req, httplib::Response& res) {
    Handler::Serve(this, req, res);
  };
  // HEAD requests reach the GET handler.
  server_->Get(".*", serve);
  server_->Post(".*", serve);
  server_->Put(".*", serve);
  server_->Patch(".*", serve);
  server_->Delete(".*", serve);
  // Connections stay open as long as clients keep them, so tests can count them.
  server_->set_keep_alive_max_count(1 << 20);
  port_ = server_->bind_to_any_port("127.0.0.1");
  if (port_ <= 0) {
    server_.reset();
    return Status::Unavailable("proxy: cannot listen on 127.0.0.1");
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // Until it runs, stop() would not reach it (and Stop would wait for it forever).
  if (!WaitFor([this] { return server_->is_running(); }, std::chrono::seconds(5),
               std::chrono::milliseconds(2))) {
    return Status::Unavailable("proxy: the server thread did not start within 5 s");
  }
  return Status::Ok();
}

void RegistryProxy::Stop() {
  if (!server_) return;
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

std::string RegistryProxy::host() const { return "127.0.0.1:" + std::to_string(port_); }

void RegistryProxy::Answer(CannedAnswer answer) {
  std::lock_guard<std::mutex> lock(mu_);
  answers_.push_back(std::move(answer));
}

std::vector<ProxiedRequest> RegistryProxy::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

}  // namespace manifold::test
