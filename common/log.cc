#include "common/log.h"

#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <time.h>

#include <nlohmann/json.hpp>

namespace manifold {
namespace {

// Ids whose values are numbers in JSON; the rest are strings.
bool IsNumericField(std::string_view key) {
  return key == "build" || key == "job" || key == "attempt";
}

// Splits LogIds' prefix off `payload` into `fields`; returns the message after it.
std::string_view TakeLogIds(std::string_view payload, std::map<std::string, std::string>* fields) {
  if (payload.empty() || payload.front() != '\x1e') return payload;
  size_t end = payload.find('\x1e', 1);
  if (end == std::string_view::npos) return payload;
  std::string_view ids = payload.substr(1, end - 1);
  while (fields != nullptr && !ids.empty()) {
    size_t key_end = ids.find('\x1f');
    if (key_end == std::string_view::npos) break;
    size_t value_end = ids.find('\x1f', key_end + 1);
    if (value_end == std::string_view::npos) break;
    (*fields)[std::string(ids.substr(0, key_end))] =
        std::string(ids.substr(key_end + 1, value_end - key_end - 1));
    ids.remove_prefix(value_end + 1);
  }
  return payload.substr(end + 1);
}

std::string Rfc3339(spdlog::log_clock::time_point time) {
  auto since_epoch = time.time_since_epoch();
  time_t seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
  auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count() % 1000;
  struct tm utc;
  gmtime_r(&seconds, &utc);
  char text[32];
  size_t n = strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &utc);
  return fmt::format("{}.{:03d}Z", std::string_view(text, n), static_cast<int>(millis));
}

class JsonFormatter : public spdlog::formatter {
 public:
  explicit JsonFormatter(std::map<std::string, std::string> fields) : fields_(std::move(fields)) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    spdlog::string_view_t level = spdlog::level::to_string_view(msg.level);
    std::string line =
        FormatJsonLine(Rfc3339(msg.time), std::string_view(level.data(), level.size()),
                       std::string_view(msg.payload.data(), msg.payload.size()), fields_);
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>(fields_);
  }

 private:
  std::map<std::string, std::string> fields_;
};

// spdlog's usual text line, with LogIds' prefix taken out of the message.
class TextFormatter : public spdlog::formatter {
 public:
  TextFormatter() : pattern_(std::make_unique<spdlog::pattern_formatter>()) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    spdlog::details::log_msg stripped = msg;
    std::string_view text = StripLogIds(std::string_view(msg.payload.data(), msg.payload.size()));
    stripped.payload = spdlog::string_view_t(text.data(), text.size());
    pattern_->format(stripped, dest);
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<TextFormatter>();
  }

 private:
  std::unique_ptr<spdlog::pattern_formatter> pattern_;
};

}  // namespace

Result<LogFormat> ParseLogFormat(std::string_view text) {
  if (text == "text") return LogFormat::kText;
  if (text == "json") return LogFormat::kJson;
  return Status::InvalidArgument("log format \"" + std::string(text) +
                                 "\" is not one of text, json");
}

void SetUpLogging(LogFormat format, const std::map<std::string, std::string>& fields) {
  // Unnamed like spdlog's own default logger, so text lines show no logger name.
  std::shared_ptr<spdlog::logger> logger;
  if (format == LogFormat::kJson) {
    // No colours: escape codes would break the JSON.
    logger =
        std::make_shared<spdlog::logger>("", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    logger->set_formatter(std::make_unique<JsonFormatter>(fields));
  } else {
    logger = std::make_shared<spdlog::logger>(
        "", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    logger->set_formatter(std::make_unique<TextFormatter>());
  }
  logger->set_level(spdlog::default_logger()->level());
  spdlog::set_default_logger(logger);
}

std::string FormatJsonLine(std::string_view time_rfc3339, std::string_view level,
                           std::string_view payload,
                           const std::map<std::string, std::string>& fields) {
  // The line's own ids win over the fixed fields.
  std::map<std::string, std::string> all = fields;
  std::string_view msg = TakeLogIds(payload, &all);
  nlohmann::ordered_json line;
  line["time"] = time_rfc3339;
  line["level"] = level;
  line["msg"] = msg;
  for (const auto& [key, value] : all) {
    if (key == "time" || key == "level" || key == "msg") continue;
    if (IsNumericField(key) && !value.empty() &&
        value.find_first_not_of("0123456789") == std::string::npos && value.size() < 20) {
      line[key] = std::stoull(value);
    } else {
      line[key] = value;
    }
  }
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string_view StripLogIds(std::string_view payload) { return TakeLogIds(payload, nullptr); }

}  // namespace manifold
