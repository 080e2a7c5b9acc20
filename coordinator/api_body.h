// Request bodies of the API: how large each may be, and reading one without ever holding
// more than that (or, piece by piece into a sink, without holding it at all).
//
// A body over its route's limit is refused with 413 whether its size is declared
// (Content-Length, checked before reading) or not (chunked, counted while reading; the
// limit also counts the bytes after decompression). A request answered before its body is
// read ends its connection, so that the unread bytes are never taken for a next request.
// Plain functions; thread-safe (each call works on its own request).
#pragma once

#include <httplib.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"
#include "coordinator/api.h"

namespace manifold {

// The most a request's body may hold, and how to say so. Only context uploads may be large.
struct BodyLimit {
  uint64_t bytes;
  const char* what;  // "the build context"
  const char* flag;  // the coordinator's flag that sets it
};
BodyLimit BodyLimitFor(const httplib::Request& req, const ApiOptions& options);

// The 413 answer's JSON body for a body of `size` bytes (text: "more than N" when unknown).
nlohmann::json TooLarge(const BodyLimit& limit, const std::string& size);

// Whether the request carries a body (HTTP/1.1: a Content-Length above 0 or a
// Transfer-Encoding).
bool HasBody(const httplib::Request& req);

// Answers with this status and JSON body, then closes the connection.
void ReplyAndClose(httplib::Response& res, int code, const nlohmann::json& body);

// Takes the body's pieces as they arrive; an error stops the reading.
using BodySink = std::function<Status(std::string_view piece)>;

// Reads the body of a POST or PUT in pieces into `sink`, stopping at the route's limit
// whatever the framing: Content-Length, chunked (which declares no size up front) or
// compressed (the limit counts the bytes after decompression). False if refused or the
// sink failed; `res` then holds the answer.
bool ReadBody(const httplib::Request& req, httplib::Response& res,
              const httplib::ContentReader& read, const ApiOptions& options, const BodySink& sink);

// A POST or PUT route's handler, given its body.
using BodyHandler =
    std::function<void(const httplib::Request&, const std::string& body, httplib::Response&)>;

// The route handler that reads the body (at most BodyLimitFor's bytes; 413 beyond) and
// hands it to `handler`. `options` must outlive the server.
httplib::Server::HandlerWithContentReader WithBody(const ApiOptions& options, BodyHandler handler);

}  // namespace manifold
