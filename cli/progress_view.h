// ProgressView: `manifold build`'s live view on a terminal, one line per platform that
// is redrawn in place, as `docker buildx build` draws its tty progress:
//
//   [+] Building 14.2s (1/2 platforms done)  build 42
//    ✔ linux/amd64  pushed sha256:4f2c…                              6.1s
//    => linux/arm64  building on arm64-1 (emulated)                  12.9s
//        STEP 3/4: RUN make
//
// Each platform shows its state (queued, assigned, building on which agent and whether it
// is emulated, pushing, done or failed) and how long it has been at it: since the build
// was submitted while queued, since an agent took it afterwards, frozen once it is done.
// Under a platform still building, its newest log line. When the build ends the last
// frame stays and, for each failed platform, the tail of its log follows.
//
// The times come from when this client saw each change (the coordinator is polled), so
// they are as exact as the poll interval. RenderProgress is a pure function of the state
// and the clock, for tests; ProgressView holds the state and writes frames to a stream.
//
// Thread-safety: not thread-safe; one view per output stream and thread.
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "cli/api_client.h"

namespace manifold {

struct PlatformProgress {
  using Clock = std::chrono::steady_clock;
  std::string platform;
  JobInfo job;                                // as last seen
  std::optional<Clock::time_point> started;   // first seen with an agent (this attempt)
  std::optional<Clock::time_point> finished;  // first seen final
  std::string last_log_line;
  std::deque<std::string> log_tail;  // the newest lines, for a failure report
  std::string partial;               // a log line still missing its newline
  int64_t log_attempt = 0;
};

struct ProgressState {
  int64_t build_id = 0;
  std::string build_state;
  PlatformProgress::Clock::time_point submitted;
  std::optional<PlatformProgress::Clock::time_point> finished;
  std::vector<PlatformProgress> platforms;  // in the build's order
};

// The frame for `state` at `now`, each line at most `width` columns (longer text is cut
// with "…"), so that no line wraps and the redraw can count lines.
std::vector<std::string> RenderProgress(const ProgressState& state,
                                        PlatformProgress::Clock::time_point now, size_t width);

// Columns of the terminal on file descriptor `fd`, or 80 when it does not say.
size_t TerminalWidth(int fd);

class ProgressView {
 public:
  // Writes to *out (a terminal), which must outlive the view.
  ProgressView(std::ostream* out, size_t width) : out_(out), width_(width) {}

  // A new snapshot of the build, seen at `now`.
  void Update(const BuildInfo& build, PlatformProgress::Clock::time_point now);
  // A log chunk of `platform` (lines may be split anywhere).
  void Write(std::string_view platform, int64_t attempt, std::string_view data);
  // Replaces the previous frame with the current one.
  void Draw(PlatformProgress::Clock::time_point now);
  // Draws the last frame and prints the log tail of each failed platform under it.
  void Finish(PlatformProgress::Clock::time_point now);

  const ProgressState& state() const { return state_; }

 private:
  PlatformProgress* Find(std::string_view platform);

  std::ostream* out_;
  size_t width_;
  ProgressState state_;
  size_t drawn_lines_ = 0;  // lines of the frame on screen, to move back over
};

}  // namespace manifold
