// RegistryTransport: how one request reaches a registry the way every RegistryClient
// operation needs it.
//
// Send adds the TLS settings of the registry's certs.d (registry_tls.h) and the
// Authorization its earlier challenges earned (registry_auth.h), answers a 401 challenge
// once, and retries connection errors, 408, 429 and 5xx with exponential back-off and
// jitter, bounded in tries and time, when the request is safe to repeat. A transport
// failure TLS caused says what to configure; an HTML page answering where the API
// should (a login portal, a proxy, the wrong port) is an error, never the registry's
// consent. Every HTTP exchange is reported to RegistryOptions::on_request.
//
// Thread-safety: all methods may be called from several threads at once (see
// RegistryAuth for the token cache, HttpClient for the connection pool).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/http_client.h"
#include "common/registry.h"
#include "common/registry_auth.h"
#include "common/registry_tls.h"
#include "common/status.h"

namespace manifold {

class RegistryTransport {
 public:
  // `host` is "127.0.0.1:5000", "ghcr.io", ... (no scheme).
  RegistryTransport(std::string host, RegistryOptions options);

  const std::string& host() const { return host_; }
  // "http://host" or "https://host".
  const std::string& base_url() const { return base_url_; }
  const RegistryOptions& options() const { return options_; }

  // Sends one request with TLS settings and authorization for `scopes`
  // ("repository:NAME:ACTIONS"), answering a 401 challenge once, and retrying transient
  // failures when `retry` is set (counted in stats->requests_retried; stats may be null).
  // A 401 after authenticating becomes an error naming the registry, `operation` and
  // what the registry said.
  Result<HttpResponse> Send(RegistryOperation kind, HttpRequest request,
                            const std::vector<std::string>& scopes, const std::string& operation,
                            bool retry, PushStats* stats = nullptr) const;

  // The back-off before try number `attempt` (1-based) after `response` (may be null):
  // its Retry-After when it has one, else doubling from initial_backoff_ms with jitter,
  // never over max_backoff_ms.
  std::chrono::milliseconds Backoff(int attempt, const HttpResponse* response) const;

  // A Location header of an answer to `request_url`, as an absolute URL.
  std::string ResolveLocation(const std::string& request_url, const std::string& location) const;

 private:
  // One HTTP exchange, reported to options_.on_request.
  Result<HttpResponse> SendOnce(RegistryOperation kind, const HttpRequest& request) const;
  // Sets the TLS settings and the timeouts on a request.
  void Prepare(HttpRequest* request) const;

  std::string host_;
  RegistryOptions options_;
  RegistryTls tls_;
  RegistryAuth auth_;
  std::string base_url_;
  HttpClient http_;
};

}  // namespace manifold
