#include "cli/progress_view.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "cli/format.h"

namespace manifold {
namespace {

constexpr size_t kLogTailLines = 20;

bool IsFinalJob(const std::string& state) {
  return state == "succeeded" || state == "failed" || state == "canceled";
}

bool HasAgent(const std::string& state) {
  return state == "assigned" || state == "building" || state == "pushing";
}

// Columns `text` takes: UTF-8 continuation bytes take none.
size_t Columns(std::string_view text) {
  return static_cast<size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

// `text` cut to `width` columns, ending in "…" when cut.
std::string Fit(const std::string& text, size_t width) {
  if (Columns(text) <= width) return text;
  std::string out;
  size_t columns = 0;
  for (char c : text) {
    bool starts_character = (c & 0xC0) != 0x80;
    if (starts_character && ++columns > width - 1) break;
    out += c;
  }
  return out + "…";
}

// A log line as one screen line: tabs and control characters (colour codes, \r) would
// move the cursor where the redraw does not expect it.
std::string Printable(std::string_view line) {
  std::string out;
  for (char c : line) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string Elapsed(std::chrono::steady_clock::duration span) {
  double seconds = std::max(0.0, std::chrono::duration<double>(span).count());
  if (seconds >= 60) {
    return FormatDuration(std::chrono::seconds(static_cast<int64_t>(seconds)));
  }
  char text[16];
  snprintf(text, sizeof(text), "%.1fs", seconds);
  return text;
}

std::string Describe(const JobInfo& job) {
  std::string agent = job.agent.empty() ? "an agent" : job.agent;
  std::string mode = job.emulated ? " (emulated)" : " (native)";
  std::string attempt = job.attempt > 1 ? ", attempt " + std::to_string(job.attempt) : "";
  if (job.state == "pending") {
    // The attempt counts those started; a requeued job waits for the next one. Its
    // placement, if any, is why it waits.
    return (job.attempt >= 1 ? "queued again for attempt " + std::to_string(job.attempt + 1)
                             : std::string("queued")) +
           (job.placement.empty() ? "" : ": " + job.placement);
  }
  if (job.state == "assigned") return "assigned to " + agent + mode + attempt;
  if (job.state == "building") return "building on " + agent + mode + attempt;
  if (job.state == "pushing") return "pushing from " + agent + attempt;
  if (job.state == "succeeded") {
    return "pushed " + job.manifest_digest.substr(0, std::string("sha256:").size() + 12);
  }
  if (job.state == "failed")
    return "failed: " + (job.error.empty() ? "no reason given" : job.error);
  if (job.state == "canceled") return "canceled";
  return job.state;
}

const char* Mark(const std::string& state) {
  if (state == "succeeded") return "✔";
  if (state == "failed" || state == "canceled") return "✘";
  return "=>";
}

}  // namespace

std::vector<std::string> RenderProgress(const ProgressState& state,
                                        PlatformProgress::Clock::time_point now, size_t width) {
  width = std::max<size_t>(width, 20);
  size_t done = 0, name_width = 0;
  for (const PlatformProgress& p : state.platforms) {
    if (IsFinalJob(p.job.state)) ++done;
    name_width = std::max(name_width, p.platform.size());
  }
  bool over = state.finished.has_value();
  std::string header = std::string(over ? "[+] Built " : "[+] Building ") +
                       Elapsed((over ? *state.finished : now) - state.submitted) + " (" +
                       std::to_string(done) + "/" + std::to_string(state.platforms.size()) +
                       " platforms done)  build " + std::to_string(state.build_id);
  if (state.build_state == "merging") header += ": pushing the image index";
  if (over) header += " " + state.build_state;
  std::vector<std::string> lines = {Fit(header, width)};
  for (const PlatformProgress& p : state.platforms) {
    auto from = p.started.value_or(state.submitted);
    std::string elapsed = Elapsed(p.finished.value_or(now) - from);
    std::string mark = Mark(p.job.state);
    std::string line = " " + mark + std::string(3 - Columns(mark), ' ') + p.platform +
                       std::string(name_width - p.platform.size(), ' ') + " " +
                       std::string(elapsed.size() < 7 ? 7 - elapsed.size() : 0, ' ') + elapsed +
                       "  " + Describe(p.job);
    lines.push_back(Fit(line, width));
    if (!IsFinalJob(p.job.state) && !p.last_log_line.empty()) {
      lines.push_back(Fit("      " + p.last_log_line, width));
    }
  }
  return lines;
}

size_t TerminalWidth(int fd) {
  struct winsize size = {};
  if (ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 80;
}

PlatformProgress* ProgressView::Find(std::string_view platform) {
  for (PlatformProgress& p : state_.platforms) {
    if (p.platform == platform) return &p;
  }
  return nullptr;
}

void ProgressView::Update(const BuildInfo& build, PlatformProgress::Clock::time_point now) {
  if (state_.build_id != build.id) {
    state_ = ProgressState();
    state_.build_id = build.id;
    state_.submitted = now;
  }
  state_.build_state = build.state;
  if (build.IsFinal() && !state_.finished) state_.finished = now;
  for (const JobInfo& job : build.jobs) {
    PlatformProgress* p = Find(job.platform);
    if (p == nullptr) {
      state_.platforms.push_back({});
      p = &state_.platforms.back();
      p->platform = job.platform;
    }
    // A retried job starts over; one that ends before it was seen running keeps counting
    // from the submission.
    if (job.attempt != p->job.attempt || job.state == "pending") p->started.reset();
    if (HasAgent(job.state) && !p->started) p->started = now;
    if (!IsFinalJob(job.state)) {
      p->finished.reset();
    } else if (!p->finished) {
      p->finished = now;
    }
    p->job = job;
  }
}

void ProgressView::Write(std::string_view platform, int64_t attempt, std::string_view data) {
  PlatformProgress* p = Find(platform);
  if (p == nullptr) {
    state_.platforms.push_back({});
    p = &state_.platforms.back();
    p->platform = std::string(platform);
  }
  if (attempt != p->log_attempt) {
    p->partial.clear();
    p->log_attempt = attempt;
  }
  p->partial.append(data);
  size_t newline;
  while ((newline = p->partial.find('\n')) != std::string::npos) {
    std::string line = Printable(std::string_view(p->partial).substr(0, newline));
    p->partial.erase(0, newline + 1);
    if (line.empty()) continue;
    p->last_log_line = line;
    p->log_tail.push_back(line);
    if (p->log_tail.size() > kLogTailLines) p->log_tail.pop_front();
  }
}

void ProgressView::Draw(PlatformProgress::Clock::time_point now) {
  std::vector<std::string> lines = RenderProgress(state_, now, width_);
  std::string frame;
  // Back to the first line of the previous frame; each line is cleared before it is
  // written and whatever the previous frame had below is erased.
  if (drawn_lines_ > 0) frame += "\x1b[" + std::to_string(drawn_lines_) + "F";
  for (const std::string& line : lines) frame += "\x1b[2K" + line + "\n";
  frame += "\x1b[J";
  *out_ << frame;
  out_->flush();
  drawn_lines_ = lines.size();
}

void ProgressView::Finish(PlatformProgress::Clock::time_point now) {
  Draw(now);
  for (PlatformProgress& p : state_.platforms) {
    if (!p.partial.empty()) {
      p.log_tail.push_back(Printable(p.partial));
      p.partial.clear();
    }
    if (p.job.state != "failed" || p.log_tail.empty()) continue;
    *out_ << "\n---- " << p.platform << ": last " << p.log_tail.size() << " log lines ----\n";
    for (const std::string& line : p.log_tail) *out_ << line << "\n";
  }
  out_->flush();
  drawn_lines_ = 0;
}

}  // namespace manifold
