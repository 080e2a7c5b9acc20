#include "tests/support/builder_run.h"

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

namespace manifold::test {

using Clock = std::chrono::steady_clock;

BuildOutcome BuildWithWatchdog(Builder& builder, const BuildRequest& request, Clock::duration limit,
                               std::atomic<bool>& cancel,
                               const std::function<void(const std::string&)>& on_log) {
  BuildOutcome outcome;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, limit, [&] { return done; })) cancel = true;
  });
  Clock::time_point start = Clock::now();
  outcome.status = builder.Build(
      request,
      [&](std::string_view chunk) {
        std::lock_guard<std::mutex> lock(mu);
        outcome.log.append(chunk);
        if (on_log) on_log(outcome.log);
      },
      &cancel);
  outcome.elapsed = Clock::now() - start;
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  watchdog.join();
  return outcome;
}

CanceledBuild CancelOnceLogShows(Builder& builder, const BuildRequest& request,
                                 const std::string& text, std::chrono::seconds wait) {
  CanceledBuild result;
  std::atomic<bool> cancel{false};
  std::mutex mu;
  std::condition_variable cv;
  bool reached = false;
  std::thread worker([&] {
    result.outcome = BuildWithWatchdog(builder, request, std::chrono::seconds(300), cancel,
                                       [&](const std::string& log) {
                                         if (log.find(text) == std::string::npos) return;
                                         std::lock_guard<std::mutex> lock(mu);
                                         reached = true;
                                         cv.notify_all();
                                       });
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, wait, [&] { return reached; });
    result.reached = reached;
  }
  Clock::time_point canceled_at = Clock::now();
  cancel = true;  // also ends the build if it never showed the text
  worker.join();
  result.cancel_took = Clock::now() - canceled_at;
  return result;
}

bool ProcessRunning(const std::vector<std::string>& argv) {
  namespace fs = std::filesystem;
  std::string wanted;
  for (const std::string& arg : argv) wanted += arg + '\0';
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline", std::ios::binary);
    std::stringstream cmdline;
    cmdline << in.rdbuf();
    if (cmdline.str() == wanted) return true;
  }
  return false;
}

}  // namespace manifold::test
