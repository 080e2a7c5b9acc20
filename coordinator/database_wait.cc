#include "coordinator/database_wait.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace manifold {

Status WaitForDatabase(const std::function<Status()>& connect, std::chrono::seconds limit) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (auto backoff = std::chrono::milliseconds(100);;
       backoff = std::min(backoff * 2, std::chrono::milliseconds(2000))) {
    Status connected = connect();
    if (connected.ok() || std::chrono::steady_clock::now() > deadline) return connected;
    spdlog::warn("waiting for the database: {}", connected.message());
    const timespec pause = {static_cast<time_t>(backoff.count() / 1000),
                            static_cast<long>(backoff.count() % 1000) * 1000000};
    // A timeout (EAGAIN) or another signal's handler (EINTR) both mean: try again.
    const int signal = sigtimedwait(&stop_signals, nullptr, &pause);
    if (signal > 0) {
      return Status::Canceled(std::string("stopped by SIG") + sigabbrev_np(signal) +
                              " while waiting for the database: " + connected.message());
    }
  }
}

}  // namespace manifold
