// RegistryProxy: an HTTP proxy in front of a real registry that can answer chosen
// requests itself, for tests of how manifold's registry client copes with what sits in
// front of registries in the wild: a login portal or web server answering HTML, a rate
// limiter answering 429 with Retry-After.
//
// Every request is recorded (method, target, when, the status returned); those matching a
// canned answer get it, the rest are forwarded to the registry with their Host header, so
// the Location URLs the registry sends back lead through the proxy again. Bodies are held
// in memory: this is for small test images, not large uploads. It listens on 127.0.0.1 at
// a free port and serves on threads of its own; Stop() (also from the destructor) joins
// them. Start and Stop from one thread; the other methods are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/status.h"

namespace httplib {
class Server;
}

namespace manifold::test {

struct CannedAnswer {
  std::string method;           // "" matches every method
  std::string target_contains;  // matched against the request's path and query
  int times = 1;                // how many matching requests get this answer; -1 for all of them
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // Instead of answering, forward the request and add `headers` to the registry's answer.
  bool forward = false;
  // Wait this long before answering or forwarding: a slow registry.
  std::chrono::milliseconds delay{0};
};

struct ProxiedRequest {
  std::string method;
  std::string target;  // path and query
  std::chrono::steady_clock::time_point received;
  int status = 0;         // what the client was answered
  bool canned = false;    // answered by the proxy, not the registry
  int client_port = 0;    // the client's end of the connection it came on
  size_t body_bytes = 0;  // the request's body
};

class RegistryProxy {
 public:
  RegistryProxy();
  ~RegistryProxy();  // Stop()
  RegistryProxy(const RegistryProxy&) = delete;
  RegistryProxy& operator=(const RegistryProxy&) = delete;

  // Listens and forwards to `upstream` ("127.0.0.1:PORT").
  Status Start(const std::string& upstream);
  void Stop();

  // "127.0.0.1:PORT", to use as the registry's host.
  std::string host() const;

  // Answers matching requests with `answer` (checked in the order added; a used-up answer
  // no longer matches).
  void Answer(CannedAnswer answer);
  // Rewrites the registry's absolute Location headers to their path and query, as some
  // registries send them.
  void MakeLocationsRelative() { relative_locations_ = true; }
  std::vector<ProxiedRequest> requests() const;

 private:
  struct Handler;

  std::unique_ptr<httplib::Server> server_;
  std::string upstream_;
  int port_ = -1;
  std::atomic<bool> relative_locations_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<CannedAnswer> answers_;     // guarded by mu_
  std::vector<ProxiedRequest> requests_;  // guarded by mu_
};

}  // namespace manifold::test
