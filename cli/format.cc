#include "cli/format.h"

#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>

namespace manifold {

std::string FormatTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string text;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    text += line + "\n";
  }
  return text;
}

std::string FormatDuration(std::chrono::seconds span) {
  int64_t s = std::max<int64_t>(span.count(), 0);
  char text[32];
  if (s < 60) {
    snprintf(text, sizeof(text), "%llds", static_cast<long long>(s));
  } else if (s < 3600) {
    snprintf(text, sizeof(text), "%lldm%02llds", static_cast<long long>(s / 60),
             static_cast<long long>(s % 60));
  } else {
    snprintf(text, sizeof(text), "%lldh%02lldm", static_cast<long long>(s / 3600),
             static_cast<long long>(s / 60 % 60));
  }
  return text;
}

std::string FormatAge(std::chrono::seconds age) {
  int64_t s = std::max<int64_t>(age.count(), 0);
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m";
  if (s < 86400) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

std::optional<std::chrono::system_clock::time_point> ParseTimestamp(const std::string& text) {
  struct tm fields = {};
  char zone = 0;
  int consumed = 0;
  if (sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c%n", &fields.tm_year, &fields.tm_mon,
             &fields.tm_mday, &fields.tm_hour, &fields.tm_min, &fields.tm_sec, &zone,
             &consumed) != 7 ||
      zone != 'Z' || static_cast<size_t>(consumed) != text.size()) {
    return std::nullopt;
  }
  fields.tm_year -= 1900;
  fields.tm_mon -= 1;
  return std::chrono::system_clock::from_time_t(timegm(&fields));
}

int PrintFailure(std::ostream* err, const Status& status) {
  *err << "manifold: " << status.message() << "\n";
  err->flush();
  return 1;
}

}  // namespace manifold
