#include "common/registry_transport.h"

#include <algorithm>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include "common/reference.h"
#include "common/registry_errors.h"
#include "common/strings.h"

namespace manifold {

RegistryTransport::RegistryTransport(std::string host, RegistryOptions options)
    : host_(std::move(host)),
      options_(std::move(options)),
      tls_(host_, options_.certs_dir),
      auth_(host_, options_.credentials, options_.docker_config_dir) {
  bool plain = false;
  if (options_.plain_http.has_value()) {
    plain = *options_.plain_http;
  } else {
    plain = std::find(options_.insecure_registries.begin(), options_.insecure_registries.end(),
                      host_) != options_.insecure_registries.end() ||
            (IsLoopbackRegistry(host_) && !tls_.has_certs_dir());
  }
  base_url_ = (plain ? "http://" : "https://") + host_;
}

void RegistryTransport::Prepare(HttpRequest* request) const {
  tls_.Apply(request);
  request->timeout_ms = options_.timeout_ms;
  request->connect_timeout_ms = options_.connect_timeout_ms;
}

std::chrono::milliseconds RegistryTransport::Backoff(int attempt,
                                                     const HttpResponse* response) const {
  const long cap = std::max(options_.max_backoff_ms, 0L);
  if (response != nullptr) {
    std::string after = response->Header("retry-after");
    if (!after.empty() && after.find_first_not_of("0123456789") == std::string::npos &&
        after.size() < 9) {
      return std::chrono::milliseconds(std::min(std::stol(after) * 1000, cap));
    }
  }
  long base = options_.initial_backoff_ms;
  for (int i = 1; i < attempt && base < cap; ++i) base *= 2;
  base = std::min(base, cap);
  // "Equal jitter": half fixed, half random, so clients that failed together spread out.
  thread_local std::mt19937_64 rng(std::random_device{}());
  std::uniform_int_distribution<long> jitter(0, std::max(base / 2, 0L));
  return std::chrono::milliseconds(base - base / 2 + jitter(rng));
}

Result<HttpResponse> RegistryTransport::SendOnce(RegistryOperation kind,
                                                 const HttpRequest& request) const {
  Result<HttpResponse> response = http_.Send(request);
  if (options_.on_request) options_.on_request(kind, response.ok() ? response->status : 0);
  return response;
}

Result<HttpResponse> RegistryTransport::Send(RegistryOperation kind, HttpRequest request,
                                             const std::vector<std::string>& scopes,
                                             const std::string& operation, bool retry,
                                             PushStats* stats) const {
  const std::string context = "registry " + host_ + ": " + operation;
  if (!tls_.status().ok()) return tls_.status().WithContext(context);
  Prepare(&request);
  const auto headers = request.headers;
  const std::string scope_key = Join(scopes, " ");
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.retry_budget_ms);
  bool authenticated = false;
  for (int attempt = 1;; ++attempt) {
    request.headers = headers;
    std::optional<std::string> auth = auth_.Authorization(scope_key);
    if (auth.has_value()) request.headers.emplace_back("Authorization", *auth);
    Result<HttpResponse> response = SendOnce(kind, request);
    if (response.ok() && response->status == 401 && !authenticated) {
      Status s = auth_.AnswerChallenge(response->Header("www-authenticate"), scopes, operation,
                                       [this](HttpRequest token_request) {
                                         Prepare(&token_request);
                                         return SendOnce(RegistryOperation::kToken, token_request);
                                       });
      if (!s.ok()) return s;
      authenticated = true;
      --attempt;  // answering a challenge is not a failed try
      continue;
    }
    if (response.ok() && response->status == 401) {
      return auth_.RefusedAfterAuthenticating(*response, scopes, context);
    }
    if (!response.ok() && response.status().retryable() && attempt == 1 &&
        base_url_.rfind("https://", 0) == 0 && IsTlsSessionFailure(response.status())) {
      // A registry that refuses the client certificate (or its absence) under TLS 1.3
      // often shows only as a reset; a TLS 1.2 handshake makes it say why.
      HttpRequest probe;
      Prepare(&probe);
      probe.url = base_url_ + "/v2/";
      probe.tls_max_1_2 = true;
      probe.timeout_ms = options_.connect_timeout_ms;
      Result<HttpResponse> probed = http_.Send(probe);
      if (!probed.ok() && !probed.status().retryable()) response = probed.status();
    }
    if (!response.ok() && !response.status().retryable()) {
      return tls_.Explain(response.status()).WithContext(context);
    }
    if (response.ok() && response->status >= 200 && response->status < 300 &&
        IsHtmlContentType(response->Header("content-type")) &&
        (response->effective_url.empty() || response->effective_url.rfind(base_url_, 0) == 0)) {
      // A web page where the API should answer (a login portal, a proxy, the wrong
      // port): taking its 200 as the registry's consent would skip blobs or report a
      // push that never happened. Bytes from a blob store a registry redirects to are
      // not judged by their type; their digest is checked instead.
      return Status::FailedPrecondition(
          context + ": HTTP " + std::to_string(response->status) + " with Content-Type " +
          response->Header("content-type") + ", not a registry API answer (" +
          (response->body.empty() ? "no body" : DescribeRegistryBody(response->body)) +
          "); check that " + host_ +
          " is the registry's address and not a web site, login page or proxy in front of it");
    }
    const bool transient = !response.ok() || IsTransientHttpStatus(response->status);
    if (!transient) return response;
    const auto wait = Backoff(attempt, response.ok() ? &*response : nullptr);
    if (!retry || attempt >= options_.max_attempts ||
        std::chrono::steady_clock::now() + wait > deadline) {
      if (!response.ok()) {
        return response.status().WithContext(context + " (after " + std::to_string(attempt) +
                                             (attempt == 1 ? " try)" : " tries)"));
      }
      return response;
    }
    if (stats != nullptr) ++stats->requests_retried;
    std::this_thread::sleep_for(wait);
  }
}

std::string RegistryTransport::ResolveLocation(const std::string& request_url,
                                               const std::string& location) const {
  if (location.rfind("http://", 0) == 0 || location.rfind("https://", 0) == 0) return location;
  if (location.rfind("//", 0) == 0)
    return base_url_.substr(0, base_url_.find(':')) + ":" + location;
  if (!location.empty() && location.front() == '/') return base_url_ + location;
  // Relative to the request's path (RFC 3986 reference resolution, without dot segments).
  std::string base = request_url.substr(0, request_url.find('?'));
  return base.substr(0, base.rfind('/') + 1) + location;
}

}  // namespace manifold
