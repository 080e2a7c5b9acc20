#include "coordinator/database_url.h"

#include <array>
#include <string_view>
#include <utility>

namespace manifold {
namespace {

// A dead host is noticed within about 25 s on an idle connection (keepalives: 10 s idle,
// then 3 probes 5 s apart) and 30 s on a busy one (tcp_user_timeout, for data the peer
// never acknowledges). A connection attempt gives up after 10 s.
constexpr std::array<std::pair<std::string_view, std::string_view>, 6> kDeadlines = {{
    {"connect_timeout", "10"},
    {"keepalives", "1"},
    {"keepalives_idle", "10"},
    {"keepalives_interval", "5"},
    {"keepalives_count", "3"},
    {"tcp_user_timeout", "30000"},
}};

bool IsUri(const std::string& url) {
  return url.starts_with("postgresql://") || url.starts_with("postgres://");
}

// Whether `key=` starts a parameter: after '?' or '&' in a URI, after whitespace (or at
// the start) in keyword/value form.
bool HasParameter(const std::string& url, std::string_view key, bool uri) {
  const std::string needle = std::string(key) + "=";
  for (size_t at = url.find(needle); at != std::string::npos; at = url.find(needle, at + 1)) {
    if (uri ? (at > 0 && (url[at - 1] == '?' || url[at - 1] == '&'))
            : (at == 0 || url[at - 1] == ' ' || url[at - 1] == '\t')) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::string WithConnectionDeadlines(const std::string& url) {
  const bool uri = IsUri(url);
  std::string out = url;
  for (const auto& [key, value] : kDeadlines) {
    if (HasParameter(url, key, uri)) continue;
    if (uri) {
      out += out.find('?') == std::string::npos ? '?' : '&';
    } else if (!out.empty()) {
      out += ' ';
    }
    out.append(key).append("=").append(value);
  }
  return out;
}

}  // namespace manifold
