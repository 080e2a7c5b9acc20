#include "cli/git_source.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
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

// A host name, an IPv4 address or a bracketed IPv6 one: what may follow https://.
bool IsHost(std::string_view host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') return true;
  if (host.empty()) return false;
  for (char c : host) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') return false;
  }
  return true;
}

// "https://HOST/PATH" for a remote's host and path, without a trailing ".git" or slash;
// "" when either is not one.
std::string HttpsUrl(std::string_view host, std::string_view path) {
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (path.ends_with(".git")) path.remove_suffix(4);
  if (!IsHost(host) || path.empty() || path.find_first_of("\\ \t") != std::string_view::npos) {
    return "";
  }
  return "https://" + std::string(host) + "/" + std::string(path);
}

// The paths whose changes make the revision "-dirty", as `git -C context_dir status`
// pathspecs: the context, and the Dockerfile when it lies elsewhere in the same work tree
// (a path outside it would make git refuse the whole command).
std::vector<std::string> BuiltPaths(const std::string& context_dir, const std::string& dockerfile) {
  std::vector<std::string> paths = {"."};
  if (dockerfile.empty() || dockerfile == "-") return paths;
  std::optional<std::string> top = Git(context_dir, {"rev-parse", "--show-toplevel"});
  if (!top) return paths;
  std::error_code error;
  std::filesystem::path file = std::filesystem::weakly_canonical(dockerfile, error);
  if (error) return paths;
  std::filesystem::path root = std::filesystem::weakly_canonical(*top, error);
  if (error) return paths;
  auto relative = file.lexically_relative(root);
  if (!relative.empty() && *relative.begin() != "..") paths.push_back(file.string());
  return paths;
}

}  // namespace

std::string SourceUrl(std::string_view remote) {
  while (!remote.empty() && std::isspace(static_cast<unsigned char>(remote.front()))) {
    remote.remove_prefix(1);
  }
  while (!remote.empty() && std::isspace(static_cast<unsigned char>(remote.back()))) {
    remote.remove_suffix(1);
  }
  std::string_view authority, path;
  if (size_t scheme_end = remote.find("://"); scheme_end != std::string_view::npos) {
    std::string scheme(remote.substr(0, scheme_end));
    for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (scheme == "https" || scheme == "http") return RedactUrl(remote);
    // file:// and helpers (ext::, fd::) name nothing a reader of the image can open.
    if (scheme != "ssh" && scheme != "git" && scheme != "git+ssh" && scheme != "ssh+git") {
      return "";
    }
    std::string_view rest = remote.substr(scheme_end + 3);
    size_t slash = rest.find('/');
    if (slash == std::string_view::npos) return "";
    authority = rest.substr(0, slash);
    path = rest.substr(slash);
    // The port is the ssh or git daemon's; the https one is the default.
    size_t port = authority.rfind(':');
    if (port != std::string_view::npos && authority.find(']', port) == std::string_view::npos) {
      authority = authority.substr(0, port);
    }
  } else {
    // git's scp-like syntax, [user@]host:path: a colon with no slash before it. Anything
    // else is a local path, or a remote helper's "transport::address".
    size_t colon = remote.find(':');
    if (colon == std::string_view::npos ||
        remote.substr(0, colon).find('/') != std::string_view::npos ||
        remote.substr(colon).starts_with("::")) {
      return "";
    }
    authority = remote.substr(0, colon);
    path = remote.substr(colon + 1);
  }
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  return HttpsUrl(authority, path);
}

GitSource DetectGitSource(const std::string& context_dir, const std::string& dockerfile) {
  GitSource source;
  std::optional<std::string> head = Git(context_dir, {"rev-parse", "--verify", "HEAD"});
  if (!head || head->empty()) return source;
  source.revision = *head;
  std::vector<std::string> status = {"status", "--porcelain", "--"};
  for (std::string& path : BuiltPaths(context_dir, dockerfile)) status.push_back(std::move(path));
  std::optional<std::string> changes = Git(context_dir, status);
  if (changes && !changes->empty()) source.revision += "-dirty";
  if (std::optional<std::string> url = Git(context_dir, {"remote", "get-url", "origin"})) {
    source.url = SourceUrl(*url);
  }
  return source;
}

}  // namespace manifold
