// Tool commands: what the builders that drive command-line tools (buildah, docker,
// skopeo) share when they run one of those tools as a step of a build.
//
// A step is logged as "manifold: <command line>" before it runs, its output streams to
// the build log, and a non-zero exit becomes Status::Internal quoting the tool's own last
// line, because running the same build again gives the same result. CheckBuildRequest
// refuses a request no backend can build before any tool runs. Plain functions and a
// value type; thread-safe as long as the CommandRunner is.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/builder.h"
#include "agent/command_runner.h"
#include "common/status.h"

namespace manifold {

// Keeps the end of a command's output so a failure message can quote the tool's own last
// words ("Error: building at STEP ...") instead of only an exit status.
class OutputTail {
 public:
  static constexpr size_t kKeep = 4096;

  void Add(std::string_view data);
  // The last non-empty line, shortened to a readable length; "" if there was none.
  std::string LastLine() const;

 private:
  std::string tail_;
};

// The command as a person would type it into a shell, for the build log.
std::string ShellCommandLine(const std::vector<std::string>& argv);

// InvalidArgument or FailedPrecondition, naming what to fix, unless the request has a
// platform, an image name, an existing context directory and Dockerfile, and a layout
// directory that is empty or absent and that the tools' "oci:PATH:TAG" syntax can name.
Status CheckBuildRequest(const BuildRequest& request);

// Appends the options that `buildah bud` and `docker build` spell alike: each build arg
// as --build-arg KEY=VALUE, --target when the request names a stage, each label as
// --label KEY=VALUE, --no-cache, and each secret as --secret id=ID,src=FILE.
void AppendBuildOptions(const BuildRequest& request, std::vector<std::string>* argv);

// Runs spec as one step of a build: logs its command line to on_output (which may be
// empty), streams its output there, and turns a non-zero exit into Status::Internal
// "<what> exited with status N: <last line>". A cancel, before or during the step, gives
// Status::Canceled; a program that cannot be started is the runner's error under `what`.
Status RunBuildStep(CommandRunner& runner, const CommandSpec& spec, const std::string& what,
                    const std::function<void(std::string_view output)>& on_output,
                    const std::atomic<bool>* cancel);

// Runs a clean-up step (removing a local image once the layout holds it): logged like a
// build step, but not cancelable and silent about its outcome, because housekeeping must
// not change the build's result.
void RunHousekeepingCommand(CommandRunner& runner, const CommandSpec& spec,
                            const std::function<void(std::string_view output)>& on_output);

// Runs spec to completion for a start-up check, keeping the end of its output in *output
// (when given). Ok on exit status 0. A non-zero exit is FailedPrecondition "'<command>'
// exited with status N: <last line>"; a program that cannot be started is
// FailedPrecondition "<tool> is not usable on this host: <why>; <install_hint>".
Status RunCheckCommand(CommandRunner& runner, const CommandSpec& spec, const std::string& tool,
                       const std::string& install_hint, std::string* output = nullptr);

}  // namespace manifold
