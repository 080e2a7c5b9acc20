#include "cli/git_source.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <vector>

#include "common/redact.h"

extern char** environ;

namespace manifold {
namespace {

// Runs `git -C dir ARGS...` and returns its stdout without the trailing newline, or
// nullopt when git is missing or exits non-zero. stderr is discarded: "not a git
// repository" is an expected answer here, not something to show.
std::optional<std::string> Git(const std::string& dir, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"git", "-C", dir};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> c_argv;
  for (std::string& arg : argv) c_argv.push_back(arg.data());
  c_argv.push_back(nullptr);

  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return std::nullopt;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  pid_t pid = 0;
  int spawned = posix_spawnp(&pid, "git", &actions, nullptr, c_argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (spawned != 0) {
    close(out[0]);
    return std::nullopt;
  }
  std::string output;
  char buffer[4096];
  for (ssize_t n; (n = read(out[0], buffer, sizeof buffer)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    output.append(buffer, static_cast<size_t>(n));
  }
  close(out[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
  return output;
}

}  // namespace

GitSource DetectGitSource(const std::string& context_dir) {
  GitSource source;
  std::optional<std::string> head = Git(context_dir, {"rev-parse", "--verify", "HEAD"});
  if (!head || head->empty()) return source;
  source.revision = *head;
  std::optional<std::string> changes = Git(context_dir, {"status", "--porcelain"});
  if (changes && !changes->empty()) source.revision += "-dirty";
  if (std::optional<std::string> url = Git(context_dir, {"remote", "get-url", "origin"})) {
    source.url = RedactUrl(*url);
  }
  return source;
}

}  // namespace manifold
