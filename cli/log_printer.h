// LogPrinter: turns a build's log chunks into lines prefixed with their platform.
//
// Agents send logs in chunks that split lines anywhere, and the chunks of several
// platforms interleave. The printer keeps each platform's unfinished last line until its
// newline arrives (or Flush at the end of the build), so that every printed line is whole
// and carries one prefix: "[linux/arm64] STEP 1/3: FROM busybox".
//
// Thread-safety: not thread-safe; one printer per output stream and thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <string_view>

namespace manifold {

class LogPrinter {
 public:
  // Prints to *out, which must outlive the printer.
  explicit LogPrinter(std::ostream* out) : out_(out) {}

  // Prints the complete lines of `data` for `platform` and keeps a trailing partial line.
  // A chunk of an attempt newer than the last one seen for the platform first flushes the
  // old attempt's partial line, so a retried job does not glue two attempts' lines.
  void Write(std::string_view platform, int64_t attempt, std::string_view data);

  // Prints one whole message line for `platform` (job state changes), leaving the
  // platform's partial log line in place.
  void Line(std::string_view platform, std::string_view text);

  // Prints every kept partial line, each ended with a newline: the build is over.
  void Flush();

  // "[linux/arm64] ", or "[build] " for chunks that belong to no platform.
  static std::string Prefix(std::string_view platform);

 private:
  struct Pending {
    int64_t attempt = 0;
    std::string partial;
  };

  void PrintLine(std::string_view platform, std::string_view line);

  std::ostream* out_;
  std::map<std::string, Pending, std::less<>> pending_;
};

}  // namespace manifold
