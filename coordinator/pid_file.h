// PidFile: manifold-coordinator's --pid-file, so that an operator without systemd signals
// this coordinator and no other (`kill -HUP "$(cat FILE)"` reloads its agent key list),
// where `pidof` would signal every coordinator on the host.
//
// Write puts this process's id in the file atomically (a temporary file renamed over it),
// so a reader sees the old pid or the new one, never half of one, and makes its directory
// first if need be (a /run directory is gone after a reboot). The destructor removes
// the file if it still holds this process's id: a clean exit leaves no stale pid behind,
// and a newer coordinator's file is left alone. An exit that skips destructors (a deposed
// leader's _Exit) leaves the file, which the next start overwrites. Used from one thread.
#pragma once

#include <string>

#include "common/status.h"

namespace manifold {

class PidFile {
 public:
  PidFile() = default;
  ~PidFile();
  PidFile(const PidFile&) = delete;
  PidFile& operator=(const PidFile&) = delete;

  // Writes getpid() and a newline to `path`; fails naming the file and the flag.
  Status Write(const std::string& path);

 private:
  std::string path_;  // "" until written
};

}  // namespace manifold
