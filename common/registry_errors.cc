#include "common/registry_errors.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

namespace manifold {
namespace {

constexpr size_t kMaxErrorBodyShown = 512;

std::string Lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// An HTML page's <title>, or "" when the body is not HTML or has none.
std::optional<std::string> HtmlTitle(const std::string& body) {
  const std::string head = Lowercase(body.substr(0, 4096));
  const size_t start = head.find_first_not_of(" \t\r\n");
  if (start == std::string::npos || head[start] != '<' ||
      (head.find("<html") == std::string::npos &&
       head.find("<!doctype html") == std::string::npos)) {
    return std::nullopt;
  }
  const size_t open = head.find("<title>");
  const size_t close = head.find("</title>", open);
  if (open == std::string::npos || close == std::string::npos) return "";
  std::string title = body.substr(open + 7, std::min<size_t>(close - open - 7, 200));
  for (char& c : title) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return title;
}

}  // namespace

bool IsTransientHttpStatus(long code) { return code == 408 || code == 429 || code >= 500; }

bool IsHtmlContentType(const std::string& content_type) {
  const std::string type = Lowercase(content_type);
  return type.rfind("text/html", 0) == 0 || type.rfind("application/xhtml", 0) == 0;
}

std::string DescribeRegistryBody(const std::string& body) {
  if (body.empty()) return "empty body";
  if (std::optional<std::string> title = HtmlTitle(body); title.has_value()) {
    return "an HTML page" + (title->empty() ? "" : " titled \"" + *title + "\"");
  }
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded() && j.is_object() && j.contains("errors") && j["errors"].is_array()) {
    std::string out;
    for (const auto& e : j["errors"]) {
      if (!e.is_object()) continue;
      if (!out.empty()) out += "; ";
      if (e.contains("code") && e["code"].is_string()) out += e["code"].get<std::string>();
      if (e.contains("message") && e["message"].is_string()) {
        out += ": " + e["message"].get<std::string>();
      }
      if (e.contains("detail") && !e["detail"].is_null()) {
        std::string detail =
            e["detail"].is_string()
                ? e["detail"].get<std::string>()
                : e["detail"].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        if (detail.size() > kMaxErrorBodyShown) detail = detail.substr(0, kMaxErrorBodyShown);
        out += " (" + detail + ")";
      }
    }
    if (!out.empty()) return out;
  }
  std::string out;
  for (char c : body.substr(0, kMaxErrorBodyShown)) {
    out.push_back(c == '\n' || c == '\r' || c == '\t'      ? ' '
                  : (static_cast<unsigned char>(c) < 0x20) ? '?'
                                                           : c);
  }
  if (body.size() > kMaxErrorBodyShown) out += "...";
  return "body: " + out;
}

bool HasRegistryErrorCode(const std::string& body, std::string_view code) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("errors") || !j["errors"].is_array()) {
    return false;
  }
  return std::any_of(j["errors"].begin(), j["errors"].end(), [&](const nlohmann::json& e) {
    return e.is_object() && e.contains("code") && e["code"].is_string() &&
           e["code"].get<std::string>() == code;
  });
}

Status RegistryHttpError(const std::string& host, const std::string& operation,
                         const HttpResponse& response) {
  const long code = response.status;
  const std::string what = "registry " + host + ": " + operation + ": HTTP " +
                           std::to_string(code) + ": " + DescribeRegistryBody(response.body);
  if (code == 401) {
    std::string challenge = response.Header("www-authenticate");
    return Status::FailedPrecondition(
        what + (challenge.empty() ? "" : " (WWW-Authenticate: " + challenge + ")") +
        "; log in with `manifold login " + host +
        " -u USER --password-stdin` (or docker login) as a user allowed to do this");
  }
  if (code == 403) {
    return Status::FailedPrecondition(what +
                                      " (access denied: the account lacks permission for "
                                      "this repository)");
  }
  if (code == 404) return Status::NotFound(what);
  if (IsTransientHttpStatus(code)) return Status::Unavailable(what);
  if (code == 400 || code == 413 || code == 415 || code == 422) {
    return Status::InvalidArgument(what);
  }
  if (code == 409 || code == 412 || code == 416) return Status::FailedPrecondition(what);
  return Status::Internal(what + " (unexpected status)");
}

}  // namespace manifold
