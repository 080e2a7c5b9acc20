// CommandRunner: runs one external program to completion, streaming its output.
//
// Builders talk to buildah (and other tools) only through this interface, so tests can
// replace the real processes with a fake that records what would have run, the way
// Ninja's CommandRunner is swapped in its build tests. SubprocessRunner is the real one:
// each command gets its own process group, so that a cancel, or the command's own exit,
// stops everything it started and a job never leaves processes behind on the agent.
//
// Thread-safety: implementations must allow several Run calls at once from different
// threads; SubprocessRunner keeps no state between calls. Each call invokes its
// on_output on the calling thread only. SubprocessRunner copies the process environment
// at each call, so nothing may setenv() while a Run is starting.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace manifold {

struct CommandSpec {
  // argv[0] is the program: a name looked up in PATH, or a path containing '/'.
  std::vector<std::string> argv;
  // Variables set (or replaced) on top of the calling process's environment.
  std::map<std::string, std::string> env_overrides;
  // Directory the program starts in; empty keeps the caller's.
  std::string working_dir;
};

class CommandRunner {
 public:
  virtual ~CommandRunner();

  // Runs spec to completion and returns its exit code, or 128 + N when signal N killed it.
  // Output (stdout and stderr merged) goes to on_output in chunks as it arrives, whole
  // lines where possible; on_output may be empty to discard it. When cancel is non-null
  // and becomes true, the command is stopped and Run returns Status::Canceled. A program
  // that cannot be started is an error naming it, never an exit code.
  virtual Result<int> Run(const CommandSpec& spec,
                          const std::function<void(std::string_view output)>& on_output,
                          const std::atomic<bool>* cancel) = 0;
};

// Runs commands as child processes (posix_spawn). The child runs in a new process group
// with stdin from /dev/null and stdout and stderr on one pipe that the calling thread
// reads. On cancel the whole group gets SIGTERM, then SIGKILL after a grace period. When
// the program exits, whatever it left running in its group is killed. The child is
// always reaped and no descriptor of one call leaks into another call's child.
class SubprocessRunner : public CommandRunner {
 public:
  // How long a canceled command has between SIGTERM and SIGKILL.
  static constexpr int kTermGraceMillis = 2000;

  Result<int> Run(const CommandSpec& spec,
                  const std::function<void(std::string_view output)>& on_output,
                  const std::atomic<bool>* cancel) override;
};

}  // namespace manifold
