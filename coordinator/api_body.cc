#include "coordinator/api_body.h"

namespace manifold {

// cpp-httplib 0.11 closes a connection only when writing a response fails, so the answer
// goes out through a provider that writes all of it and then reports failure.
void ReplyAndClose(httplib::Response& res, int code, const nlohmann::json& body) {
  res.status = code;
  res.set_header("Connection", "close");
  std::string text = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  res.set_content_provider(text.size(), "application/json",
                           [text](size_t offset, size_t length, httplib::DataSink& sink) {
                             sink.write(text.data() + offset, length);
                             return false;
                           });
}

bool HasBody(const httplib::Request& req) {
  return req.has_header("Transfer-Encoding") ||
         req.get_header_value<uint64_t>("Content-Length") > 0;
}

BodyLimit BodyLimitFor(const httplib::Request& req, const ApiOptions& options) {
  if (req.method == "PUT" && req.path.starts_with("/v1/contexts/")) {
    return {options.max_context_bytes, "the build context", "--max-context-bytes"};
  }
  return {options.max_request_bytes, "the request body", "--max-request-bytes"};
}

nlohmann::json TooLarge(const BodyLimit& limit, const std::string& size) {
  return {{"error", std::string(limit.what) + " is " + size +
                        " bytes; this coordinator accepts at most " + std::to_string(limit.bytes) +
                        " (" + limit.flag + ")"}};
}

bool ReadBody(const httplib::Request& req, httplib::Response& res,
              const httplib::ContentReader& read, const ApiOptions& options, const BodySink& sink) {
  // HTTP/1.1: no Content-Length and no Transfer-Encoding means no body (cpp-httplib would
  // wait for the connection to end).
  if (!HasBody(req)) return true;
  if (req.is_multipart_form_data()) {
    ReplyAndClose(res, 415,
                  nlohmann::json{{"error",
                                  "multipart/form-data is not accepted; send the body itself "
                                  "(application/json, or application/x-tar for a context)"}});
    return false;
  }
  const BodyLimit limit = BodyLimitFor(req, options);
  uint64_t received = 0;
  bool too_large = false;
  Status taken;
  bool complete = read([&](const char* data, size_t size) {
    if (size > limit.bytes - received) {
      too_large = true;
      return false;
    }
    received += size;
    taken = sink(std::string_view(data, size));
    return taken.ok();
  });
  if (too_large) {
    ReplyAndClose(res, 413, TooLarge(limit, "more than " + std::to_string(limit.bytes)));
  } else if (!taken.ok()) {
    ReplyAndClose(res, 500, nlohmann::json{{"error", taken.message()}});
  } else if (!complete) {
    ReplyAndClose(res, 400,
                  nlohmann::json{{"error",
                                  "the request body could not be read (malformed chunked "
                                  "encoding or compression, or the connection ended early)"}});
  }
  return complete;
}

httplib::Server::HandlerWithContentReader WithBody(const ApiOptions& options, BodyHandler handler) {
  return
      [&options, handler = std::move(handler)](const httplib::Request& req, httplib::Response& res,
                                               const httplib::ContentReader& read) {
        std::string body;
        auto append = [&body](std::string_view piece) {
          body.append(piece);
          return Status::Ok();
        };
        if (ReadBody(req, res, read, options, append)) handler(req, body, res);
      };
}

}  // namespace manifold
