// HttpClient: one HTTP request and its response, over libcurl.
//
// The registry client, the agent (streaming a build context as it unpacks it) and the CLI (the
// coordinator's JSON API, context uploads) all speak HTTP through this one wrapper, so the
// libcurl traps (100-continue stalls, chunked uploads, signals in threads) are handled
// once. A transport failure (refused connection, DNS, timeout, reset) is a
// Status::Unavailable naming the URL and curl's reason; TLS failures a retry cannot fix
// (an untrusted or refused certificate, a server that answers without TLS) are
// FailedPrecondition with OpenSSL's reason; any HTTP status, 4xx and 5xx
// included, is a successful Send whose caller decides what the status means.
//
// Successive requests through one HttpClient (or its copies) reuse connections: idle curl
// handles are kept with their open connections, so a run of requests to one registry
// pays for one TCP (and TLS) handshake, not one per request. DNS answers and TLS
// sessions are shared between the handles too.
//
// Thread-safety: Send may be called from any number of threads at once. Each call takes
// an idle handle for itself (or makes one), so concurrent requests use separate
// connections; the pool and the shared caches are guarded by mutexes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace manifold {

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // If set, the upload body is streamed from this file instead of `body`.
  std::string body_file;
  // If not -1, the upload body is streamed from this open file (which may have no name,
  // such as a temp file already unlinked) as from body_file; it stays the caller's.
  int body_fd = -1;
  // If set, a 2xx response body is streamed into this file (created or truncated) instead
  // of memory; the body of any other status is still kept in memory for error messages.
  // On a transport failure the file is removed.
  std::string response_file;
  // If set, a 2xx response body is handed to this in pieces as it arrives instead of being
  // kept, so its size is not bounded by memory; an error from it stops the transfer and is
  // what Send returns.
  std::function<Status(std::string_view bytes)> response_sink;
  long timeout_ms = 300000;  // whole transfer; 0 means no limit
  long connect_timeout_ms = 10000;
  bool follow_redirects = false;
  // Bodies kept in memory larger than this fail the request rather than exhaust memory on
  // a hostile or broken server.
  size_t max_body_bytes = size_t{256} << 20;
  // Upload only this part of body_file (offset, length); length < 0 means to its end.
  // Chunked blob uploads send a large file as several PATCH requests this way.
  int64_t body_file_offset = 0;
  int64_t body_file_length = -1;

  // TLS. The peer is always verified; these add trust and identity, as docker's
  // certs.d does. extra_ca_pem is appended to the system's trusted CAs (PEM text).
  std::string extra_ca_pem;
  std::string client_cert_file;  // PEM certificate presented to the server
  std::string client_key_file;   // its PEM private key
  // Negotiate TLS 1.2 at most. For diagnosis only: a server refusing the client's
  // certificate says so during a TLS 1.2 handshake, whereas under TLS 1.3 its alert races
  // the request and often arrives as a bare reset.
  bool tls_max_1_2 = false;
};

struct HttpResponse {
  long status = 0;
  // Headers of the final response (after redirects), names lowercased, values trimmed.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;           // empty when the body went to HttpRequest::response_file
  std::string effective_url;  // the URL that answered, after redirects

  // The first header with this name (case-insensitive), or "" when absent.
  std::string Header(std::string_view name) const;
};

class HttpClient {
 public:
  HttpClient();

  Result<HttpResponse> Send(const HttpRequest& request) const;

 private:
  struct Pool;  // idle curl handles and the caches they share
  std::shared_ptr<Pool> pool_;
};

// "GET https://host/path": for error messages, without the URL's credentials (RedactUrl).
std::string DescribeRequest(const HttpRequest& request);

// Percent-encodes every byte but RFC 3986's unreserved characters (A-Z a-z 0-9 - _ . ~),
// for a query parameter or a form field.
std::string UrlEncode(std::string_view text);

}  // namespace manifold
