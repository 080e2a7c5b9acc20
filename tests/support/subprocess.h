// Subprocess and RunCommand: run the real programs that integration tests need
// (docker-registry, postgres, skopeo, buildah, manifold's own binaries).
//
// A Subprocess is a long-running service: it runs in its own process group with stdout
// and stderr appended to a log file, and it is always stopped, whole group included, when
// the object goes away, so a failing test leaves nothing running. RunCommand runs a short
// command to completion with a deadline and returns its combined output. Both look the
// program up in PATH. A Subprocess object is used from one thread; RunCommand is
// thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace manifold::test {

class Subprocess {
 public:
  Subprocess() = default;
  ~Subprocess();  // Stop()
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // Starts argv with this process's environment plus `env` (which overrides), stdin from
  // /dev/null, stdout and stderr appended to `log_file`. Fails if already started or if
  // the program cannot be run.
  Status Start(const std::vector<std::string>& argv,
               const std::map<std::string, std::string>& env = {},
               const std::string& log_file = "/dev/null");

  // Whether the process has been started and has not exited yet.
  bool Running();

  // Waits up to `timeout` for the process to exit. Returns its exit status (128 + signal
  // number when a signal ended it), or -1 if it is still running or was never started.
  // When it exits, whatever it left in its process group is killed.
  int Wait(std::chrono::milliseconds timeout);

  // SIGTERM to the process group, up to `grace` for the process to exit, then SIGKILL.
  // Returns the exit status as Wait does; -1 if never started.
  int Stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

  pid_t pid() const { return pid_; }
  const std::string& log_file() const { return log_file_; }
  // The last max_bytes of the log file, for failure messages.
  std::string LogTail(size_t max_bytes = 4096) const;

 private:
  bool Exited();  // true once the process is a zombie or reaped; does not reap
  void Reap();

  pid_t pid_ = -1;
  bool reaped_ = false;
  int exit_code_ = -1;
  std::string log_file_;
};

struct CommandResult {
  int exit_code = -1;  // 128 + signal when killed; -1 when it timed out; 127 if not run
  std::string output;  // stdout and stderr interleaved
};

// Runs argv to completion (environment plus `env`, stdin from /dev/null). After `timeout`
// the command's process group is killed and exit_code is -1, with the output so far.
CommandResult RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                         const std::map<std::string, std::string>& env = {});

// The last max_bytes of a file ("" if unreadable).
std::string ReadFileTail(const std::string& path, size_t max_bytes = 4096);

}  // namespace manifold::test
