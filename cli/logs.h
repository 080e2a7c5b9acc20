// `manifold logs`: a build's logs, printed once or followed until the build is final.
//
// Output goes to `out`, one-line errors to `err`; the command returns the process exit
// code (0, or 1 when the coordinator could not answer or knows no such build).
//
// Thread-safety: RunLogs runs on the caller's thread and touches only its arguments.
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>

namespace manifold {

// Prints the logs held now, or with `follow` polls every `interval` until the build is
// final.
int RunLogs(const std::string& server, int64_t id, bool follow, std::chrono::milliseconds interval,
            std::ostream* out, std::ostream* err);

}  // namespace manifold
