#include "cli/log_printer.h"

namespace manifold {

std::string LogPrinter::Prefix(std::string_view platform) {
  return "[" + std::string(platform.empty() ? "build" : platform) + "] ";
}

void LogPrinter::PrintLine(std::string_view platform, std::string_view line) {
  // Builders end lines with "\r\n" or redraw progress with '\r'; without the carriage
  // return the terminal would overwrite the prefix.
  while (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  size_t redraw = line.rfind('\r');
  if (redraw != std::string_view::npos) line.remove_prefix(redraw + 1);
  std::string prefix = Prefix(platform);
  if (line.empty()) prefix.pop_back();  // no trailing blank on an empty line
  *out_ << prefix << line << '\n';
}

void LogPrinter::Write(std::string_view platform, int64_t attempt, std::string_view data) {
  auto it = pending_.find(platform);
  if (it == pending_.end()) it = pending_.emplace(std::string(platform), Pending{}).first;
  Pending& pending = it->second;
  if (attempt > pending.attempt) {
    if (!pending.partial.empty()) PrintLine(platform, pending.partial);
    pending.partial.clear();
    pending.attempt = attempt;
  }
  size_t start = 0;
  while (start < data.size()) {
    size_t newline = data.find('\n', start);
    if (newline == std::string_view::npos) {
      pending.partial.append(data.substr(start));
      break;
    }
    if (pending.partial.empty()) {
      PrintLine(platform, data.substr(start, newline - start));
    } else {
      pending.partial.append(data.substr(start, newline - start));
      PrintLine(platform, pending.partial);
      pending.partial.clear();
    }
    start = newline + 1;
  }
  out_->flush();
}

void LogPrinter::Line(std::string_view platform, std::string_view text) {
  PrintLine(platform, text);
  out_->flush();
}

void LogPrinter::Flush() {
  for (auto& [platform, pending] : pending_) {
    if (!pending.partial.empty()) PrintLine(platform, pending.partial);
    pending.partial.clear();
  }
  out_->flush();
}

}  // namespace manifold
