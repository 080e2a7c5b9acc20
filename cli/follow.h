// Following a build: polls the coordinator for a build's state and logs until the build
// is final, printing log lines and job state changes as they happen.
//
// `manifold build` and `manifold logs --follow` share this loop. The coordinator offers
// no push channel, so the client polls GET /v1/builds/{id}/logs?after=N and
// GET /v1/builds/{id} (docs/API.md) every interval, and rides out a coordinator that is
// briefly unreachable (a restart loses nothing) for a bounded time.
//
// Thread-safety: FollowBuild runs on the caller's thread and touches only its arguments;
// JobChanges is a pure function.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "cli/api_client.h"
#include "cli/log_printer.h"
#include "cli/progress_view.h"
#include "common/status.h"

namespace manifold {

// A line to print about one job (platform) or, with an empty platform, the build.
struct ProgressEvent {
  std::string platform;
  std::string text;
  // A job's final word ("pushed sha256:...", "failed: ...") or the build's move to merging:
  // printed after the log lines fetched in the same poll, so it follows the last of them.
  bool final = false;
};

// What changed between two snapshots of a build: job states, agents and attempts, and the
// build entering "merging". `before` is null for the first snapshot.
std::vector<ProgressEvent> JobChanges(const BuildInfo* before, const BuildInfo& after);

struct FollowOptions {
  bool print_logs = true;         // log chunks, through the printer
  bool print_job_changes = true;  // ProgressEvents, through the printer
  std::chrono::milliseconds interval{250};
  // How long an unreachable or failing (5xx) coordinator is retried before giving up.
  std::chrono::milliseconds unavailable_grace{60000};
  // When set and it becomes true (Ctrl-C), following stops with Status::Canceled.
  const std::atomic<bool>* interrupted = nullptr;
  // A terminal's live view: gets every snapshot and log chunk (instead of the printer)
  // and is redrawn after each poll.
  ProgressView* view = nullptr;
};

// Polls until build `id` is final and, when printing logs, every chunk was printed; then
// flushes the printer's partial lines and returns the final build. `printer` may be null
// when neither logs nor changes are printed. Warnings about retries go to *err.
Result<BuildInfo> FollowBuild(const ApiClient& api, int64_t id, const FollowOptions& options,
                              LogPrinter* printer, std::ostream* err);

// Prints every log chunk the coordinator holds now for build `id`, without waiting.
Status PrintAvailableLogs(const ApiClient& api, int64_t id, LogPrinter* printer);

}  // namespace manifold
