// Logging for the coordinator and the agent: spdlog's default logger on stderr, either
// human-readable text lines (the default) or one JSON object per line (--log-format json)
// with "time", "level", "msg" and the ids of the build, job, attempt and agent a line is
// about as fields of their own, so a log pipeline can select every line of one build.
//
// A call site names those ids by passing a LogIds as the first argument of the format
// string: spdlog::info("{}job {} attempt {} failed", LogIds{.job = 7, .attempt = 2}, 7, 2).
// The ids travel inside the message as a prefix the formatters below strip again: text
// lines show the message as written (which names the ids in words), JSON lines carry
// them as fields. Fields given to SetUpLogging (the agent's own id) go on every line.
// SetUpLogging is called once at start, before other threads log; afterwards logging
// is as thread-safe as spdlog's default logger.
#pragma once

#include <fmt/format.h>
#include <spdlog/fwd.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace manifold {

enum class LogFormat { kText, kJson };

// "text" or "json"; anything else is an error naming both.
Result<LogFormat> ParseLogFormat(std::string_view text);

// Replaces spdlog's default logger with one writing `format` lines to stderr.
// `fields` (e.g. {"agent": "amd64-1"}) are added to every JSON line.
void SetUpLogging(LogFormat format, const std::map<std::string, std::string>& fields = {});

// What a log line is about; unset ids are left out.
struct LogIds {
  std::optional<uint64_t> build = std::nullopt;
  std::optional<uint64_t> job = std::nullopt;
  std::optional<uint32_t> attempt = std::nullopt;
  std::string_view agent = {};
};

// The JSON line for one message (without the newline): `payload` as logged, possibly
// starting with LogIds' prefix. Exposed for tests.
std::string FormatJsonLine(std::string_view time_rfc3339, std::string_view level,
                           std::string_view payload,
                           const std::map<std::string, std::string>& fields);
// `payload` without LogIds' prefix: what a text line shows.
std::string_view StripLogIds(std::string_view payload);

}  // namespace manifold

// Writes the ids as a prefix of control characters: "\x1e" key "\x1f" value ... "\x1e".
template <>
struct fmt::formatter<manifold::LogIds> {
  constexpr auto parse(format_parse_context& ctx) { return ctx.begin(); }
  template <typename FormatContext>
  auto format(const manifold::LogIds& ids, FormatContext& ctx) const {
    auto out = ctx.out();
    *out++ = '\x1e';
    auto field = [&](std::string_view key, auto value) {
      out = fmt::format_to(out, "{}\x1f{}\x1f", key, value);
    };
    if (ids.build) field("build", *ids.build);
    if (ids.job) field("job", *ids.job);
    if (ids.attempt) field("attempt", *ids.attempt);
    if (!ids.agent.empty()) {
      std::string agent;
      for (char c : ids.agent) agent += (c == '\x1e' || c == '\x1f') ? '?' : c;
      field("agent", agent);
    }
    *out++ = '\x1e';
    return out;
  }
};
