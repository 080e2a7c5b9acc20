// Builder runs for tests: one Build bounded by a watchdog, and one canceled as soon as
// its log shows a given text (a RUN step that is known to be running).
//
// Every backend's test needs both, with the same guarantees: a hung builder fails the
// test instead of hanging it, and a cancel is sent only once the build has really
// reached the step to interrupt. Plain functions; each run uses its own threads and
// locks, so runs may go on in parallel.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "agent/builder.h"
#include "common/status.h"

namespace manifold::test {

struct BuildOutcome {
  Status status;
  std::string log;
  std::chrono::steady_clock::duration elapsed{};
};

// Runs builder.Build(request) and sets `cancel` if it has not returned after `limit`.
// `on_log` (may be empty) sees the whole log each time it grows, under a lock.
BuildOutcome BuildWithWatchdog(Builder& builder, const BuildRequest& request,
                               std::chrono::steady_clock::duration limit, std::atomic<bool>& cancel,
                               const std::function<void(const std::string&)>& on_log = {});

struct CanceledBuild {
  BuildOutcome outcome;
  bool reached = false;                               // the log showed the text before the cancel
  std::chrono::steady_clock::duration cancel_took{};  // from the cancel to Build returning
};

// Starts the build, waits up to `wait` for its log to contain `text`, then cancels it
// (also when the text never came) and waits for Build to return.
CanceledBuild CancelOnceLogShows(Builder& builder, const BuildRequest& request,
                                 const std::string& text, std::chrono::seconds wait);

// Whether a live process has exactly this command line (zombies have none).
bool ProcessRunning(const std::vector<std::string>& argv);

}  // namespace manifold::test
