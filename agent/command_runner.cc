#include "agent/command_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <utility>

extern char** environ;

namespace manifold {

CommandRunner::~CommandRunner() = default;

namespace {

using Clock = std::chrono::steady_clock;

// Output is handed on in whole lines unless a line grows past this, so that a tool that
// prints progress without newlines still shows up in the log.
constexpr size_t kMaxPendingOutput = 64 * 1024;
constexpr size_t kReadChunk = 64 * 1024;
// After the program exits, how long its output pipe may stay open (held by a process
// that left the group) before the runner stops reading.
constexpr auto kDrainGrace = std::chrono::seconds(2);
constexpr int kPollMillis = 50;
constexpr int kMaxReadsPerPoll = 16;
// Poll step once the pipe is closed but the exit has not been seen yet; short, because
// that state usually lasts only microseconds.
constexpr auto kExitPoll = std::chrono::milliseconds(5);

std::string ErrnoText(int err) { return std::strerror(err); }

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Owns a started child until it is reaped; if Run leaves early (an exception from
// on_output), the destructor kills the group and reaps so nothing is left behind.
class ChildProcess {
 public:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    if (reaped_) return;
    KillGroup(SIGKILL);
    Reap();
  }

  pid_t pid() const { return pid_; }

  // The child is its group's leader, so its pid is the group id. The group id cannot be
  // reused while the leader is unreaped, which is why exits are observed with WNOWAIT
  // and the reaping happens last.
  void KillGroup(int sig) const { ::kill(-pid_, sig); }

  // True once the child has exited (it stays a zombie until Reap). Sets *err on failure.
  bool HasExited(int* err) const {
    siginfo_t info;
    std::memset(&info, 0, sizeof(info));
    int r;
    do {
      r = ::waitid(P_PID, pid_, &info, WEXITED | WNOHANG | WNOWAIT);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      *err = errno;
      return false;
    }
    return info.si_pid == pid_;
  }

  // Returns the raw wait status.
  int Reap() {
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(pid_, &status, 0);
    } while (r < 0 && errno == EINTR);
    reaped_ = true;
    return status;
  }

 private:
  pid_t pid_;
  bool reaped_ = false;
};

// Buffers output so that on_output sees whole lines where it can.
class LineSplitter {
 public:
  explicit LineSplitter(const std::function<void(std::string_view)>& sink) : sink_(sink) {}

  void Add(std::string_view data) {
    if (!sink_) return;
    pending_.append(data);
    size_t end = pending_.rfind('\n');
    if (end != std::string::npos) {
      sink_(std::string_view(pending_).substr(0, end + 1));
      pending_.erase(0, end + 1);
    }
    if (pending_.size() > kMaxPendingOutput) Flush();
  }

  void Flush() {
    if (!sink_ || pending_.empty()) return;
    sink_(pending_);
    pending_.clear();
  }

 private:
  const std::function<void(std::string_view)>& sink_;
  std::string pending_;
};

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// Finds the file to execute the way execvp would in the child: names containing '/' are
// taken as they are, others are searched in PATH. Relative paths are resolved against the
// directory the child will start in. Doing this in the parent turns a missing program
// into a message that says so, instead of an exit code.
Result<std::string> ResolveProgram(const std::string& program, const std::string& path_env,
                                   const std::string& working_dir) {
  auto as_seen_by_child = [&](const std::string& path) {
    if (path.empty() || path[0] == '/' || working_dir.empty()) return path;
    return working_dir + "/" + path;
  };
  if (program.find('/') != std::string::npos) {
    std::string candidate = as_seen_by_child(program);
    struct stat st;
    if (::stat(candidate.c_str(), &st) != 0) {
      return Status::NotFound("cannot run '" + program + "': " + ErrnoText(errno));
    }
    if (!S_ISREG(st.st_mode) || ::access(candidate.c_str(), X_OK) != 0) {
      return Status::FailedPrecondition("cannot run '" + program + "': not an executable file");
    }
    return program;
  }
  size_t start = 0;
  while (start <= path_env.size()) {
    size_t end = path_env.find(':', start);
    if (end == std::string::npos) end = path_env.size();
    std::string dir = path_env.substr(start, end - start);
    if (dir.empty()) dir = ".";  // POSIX: an empty PATH entry is the current directory
    std::string path = dir + "/" + program;
    if (IsExecutableFile(as_seen_by_child(path))) return path;
    start = end + 1;
  }
  return Status::NotFound("cannot run '" + program + "': no such program in PATH (" + path_env +
                          ")");
}

// The child's environment: the caller's, with the overrides set on top.
Result<std::vector<std::string>> BuildEnvironment(
    const std::map<std::string, std::string>& overrides) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    std::string key(entry.substr(0, entry.find('=')));
    if (overrides.count(key) == 0) env.emplace_back(entry);
  }
  for (const auto& [key, value] : overrides) {
    if (key.empty() || key.find('=') != std::string::npos) {
      return Status::InvalidArgument("environment variable name '" + key +
                                     "' is empty or contains '='");
    }
    env.push_back(key + "=" + value);
  }
  return env;
}

std::vector<char*> PointerArray(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (auto& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

// posix_spawn attributes and file actions, destroyed on every path out.
class SpawnSetup {
 public:
  SpawnSetup() {
    posix_spawnattr_init(&attr_);
    posix_spawn_file_actions_init(&actions_);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions_);
    posix_spawnattr_destroy(&attr_);
  }

  // Returns 0 or an errno value.
  int Init(int output_fd, const std::string& working_dir) {
    // A new process group, so cancel can signal everything the command started.
    int rc = posix_spawnattr_setpgroup(&attr_, 0);
    // The caller's blocked and ignored signals (an agent may ignore SIGPIPE) must not
    // change how the tools behave.
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    if (rc == 0) rc = posix_spawnattr_setsigmask(&attr_, &none);
    if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr_, &all);
    if (rc == 0) {
      rc = posix_spawnattr_setflags(
          &attr_, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    }
    if (rc == 0) rc = posix_spawn_file_actions_addopen(&actions_, 0, "/dev/null", O_RDONLY, 0);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&actions_, output_fd, 1);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&actions_, output_fd, 2);
    if (rc == 0 && !working_dir.empty()) {
      rc = posix_spawn_file_actions_addchdir_np(&actions_, working_dir.c_str());
    }
    // Nothing else of the agent's: a socket another thread opened without O_CLOEXEC (a
    // registry connection, a listener) would live on in a build that outlives the agent.
    if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&actions_, 3);
    return rc;
  }

  const posix_spawnattr_t* attr() const { return &attr_; }
  const posix_spawn_file_actions_t* actions() const { return &actions_; }

 private:
  posix_spawnattr_t attr_;
  posix_spawn_file_actions_t actions_;
};

}  // namespace

Result<int> SubprocessRunner::Run(const CommandSpec& spec,
                                  const std::function<void(std::string_view)>& on_output,
                                  const std::atomic<bool>* cancel) {
  if (spec.argv.empty() || spec.argv[0].empty()) {
    return Status::InvalidArgument("cannot run a command with an empty argv");
  }
  const std::string& program = spec.argv[0];

  if (!spec.working_dir.empty()) {
    struct stat st;
    if (::stat(spec.working_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Status::NotFound("cannot run '" + program + "': working directory '" +
                              spec.working_dir + "' does not exist or is not a directory");
    }
  }

  Result<std::vector<std::string>> env = BuildEnvironment(spec.env_overrides);
  if (!env.ok()) return env.status();
  std::string path_env = "/usr/local/bin:/usr/bin:/bin";
  if (auto it = spec.env_overrides.find("PATH"); it != spec.env_overrides.end()) {
    path_env = it->second;
  } else if (const char* p = ::getenv("PATH"); p != nullptr) {
    path_env = p;
  }
  Result<std::string> executable = ResolveProgram(program, path_env, spec.working_dir);
  if (!executable.ok()) return executable.status();

  std::vector<std::string> argv_strings = spec.argv;
  std::vector<char*> argv = PointerArray(argv_strings);
  std::vector<char*> envp = PointerArray(*env);

  // O_CLOEXEC, so a command started at the same time by another thread does not inherit
  // this pipe and keep it open past this command's end.
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return Status::Internal("cannot run '" + program + "': pipe: " + ErrnoText(errno));
  }
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);

  SpawnSetup setup;
  if (int rc = setup.Init(write_end.get(), spec.working_dir); rc != 0) {
    return Status::Internal("cannot run '" + program + "': posix_spawn setup: " + ErrnoText(rc));
  }
  pid_t pid = -1;
  if (int rc = ::posix_spawn(&pid, executable->c_str(), setup.actions(), setup.attr(), argv.data(),
                             envp.data());
      rc != 0) {
    return Status::FailedPrecondition("cannot start '" + program + "' (" + *executable +
                                      "): " + ErrnoText(rc));
  }
  ChildProcess child(pid);
  write_end.Reset();  // only the child writes; EOF then means every writer is gone
  ::fcntl(read_end.get(), F_SETFL, ::fcntl(read_end.get(), F_GETFL) | O_NONBLOCK);

  LineSplitter output(on_output);
  std::string buffer(kReadChunk, '\0');
  bool exited = false;
  bool pipe_open = true;
  bool canceled = false;
  bool killed = false;
  Clock::time_point term_deadline;
  Clock::time_point drain_deadline;
  for (;;) {
    Clock::time_point now = Clock::now();
    if (!exited) {
      int err = 0;
      exited = child.HasExited(&err);
      if (err != 0) {
        return Status::Internal("lost track of '" + program + "' (pid " + std::to_string(pid) +
                                "): waitid: " + ErrnoText(err) +
                                "; is SIGCHLD ignored in this process?");
      }
      if (exited) {
        // Whatever the command left running in its group would outlive the job.
        child.KillGroup(SIGKILL);
        drain_deadline = now + kDrainGrace;
      }
    }
    if (!exited && !canceled && cancel != nullptr && cancel->load()) {
      canceled = true;
      child.KillGroup(SIGTERM);
      term_deadline = now + std::chrono::milliseconds(kTermGraceMillis);
    }
    if (canceled && !exited && !killed && now >= term_deadline) {
      child.KillGroup(SIGKILL);
      killed = true;
    }
    if (exited && (!pipe_open || now >= drain_deadline)) break;
    if (!pipe_open) {
      std::this_thread::sleep_for(kExitPoll);
      continue;
    }

    pollfd pfd{read_end.get(), POLLIN, 0};
    int r = ::poll(&pfd, 1, kPollMillis);
    if (r < 0 && errno != EINTR) {
      return Status::Internal("reading output of '" + program + "': poll: " + ErrnoText(errno));
    }
    if (r <= 0) continue;
    // Bounded, so that a command that writes without pause still sees its cancel.
    for (int reads = 0; reads < kMaxReadsPerPoll; ++reads) {
      ssize_t n = ::read(read_end.get(), buffer.data(), buffer.size());
      if (n > 0) {
        output.Add(std::string_view(buffer.data(), static_cast<size_t>(n)));
        continue;
      }
      if (n == 0) {
        pipe_open = false;
      } else if (errno == EINTR) {
        continue;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
        return Status::Internal("reading output of '" + program + "': " + ErrnoText(errno));
      }
      break;
    }
  }
  output.Flush();
  read_end.Reset();

  int status = child.Reap();
  if (canceled) {
    return Status::Canceled("'" + program + "' was canceled; its processes were stopped");
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return Status::Internal("'" + program + "' ended with unexpected wait status " +
                          std::to_string(status));
}

}  // namespace manifold
