#include "tests/support/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

extern char** environ;

namespace manifold::test {
namespace {

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Owns the argv/envp arrays posix_spawn wants, built before spawning so that nothing
// allocates between fork and exec.
class SpawnArgs {
 public:
  SpawnArgs(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env)
      : argv_strings_(argv) {
    for (char** e = environ; *e != nullptr; ++e) {
      std::string entry(*e);
      auto eq = entry.find('=');
      if (eq != std::string::npos && env.count(entry.substr(0, eq)) != 0) continue;
      env_strings_.push_back(std::move(entry));
    }
    for (const auto& [key, value] : env) env_strings_.push_back(key + "=" + value);
    for (auto& s : argv_strings_) argv_.push_back(s.data());
    argv_.push_back(nullptr);
    for (auto& s : env_strings_) envp_.push_back(s.data());
    envp_.push_back(nullptr);
  }
  char* const* argv() { return argv_.data(); }
  char* const* envp() { return envp_.data(); }

 private:
  std::vector<std::string> argv_strings_;
  std::vector<std::string> env_strings_;
  std::vector<char*> argv_;
  std::vector<char*> envp_;
};

// Spawns in a new process group with default signal handling and an empty signal mask,
// whatever the test runner set up for itself.
int Spawn(pid_t* pid, SpawnArgs& args, posix_spawn_file_actions_t* actions) {
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &all);
  int rc = posix_spawnp(pid, args.argv()[0], actions, &attr, args.argv(), args.envp());
  posix_spawnattr_destroy(&attr);
  return rc;
}

bool PeekExited(pid_t pid) {
  siginfo_t info{};
  if (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    return errno == ECHILD;  // already reaped by someone else: it is gone either way
  }
  return info.si_pid == pid;
}

}  // namespace

Subprocess::~Subprocess() { Stop(); }

Status Subprocess::Start(const std::vector<std::string>& argv,
                         const std::map<std::string, std::string>& env,
                         const std::string& log_file) {
  if (pid_ > 0 && !reaped_) return Status::FailedPrecondition("subprocess already started");
  if (argv.empty()) return Status::InvalidArgument("subprocess: empty argv");
  SpawnArgs args(argv, env);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  // A socket the test holds (a proxy's end of a connection) must close when the test closes
  // it, not live on in a registry or agent started meanwhile.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  pid_t pid = -1;
  int rc = Spawn(&pid, args, &actions);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    return Status::Internal("cannot start " + argv[0] + ": " + std::strerror(rc));
  }
  pid_ = pid;
  reaped_ = false;
  exit_code_ = -1;
  log_file_ = log_file;
  return Status::Ok();
}

bool Subprocess::Exited() { return pid_ <= 0 || reaped_ || PeekExited(pid_); }

bool Subprocess::Running() { return pid_ > 0 && !Exited(); }

void Subprocess::Reap() {
  if (pid_ <= 0 || reaped_) return;
  // The leader is a zombie (or about to be killed) and not yet reaped, so its pid still
  // names our group: kill what it left behind before releasing the id.
  kill(-pid_, SIGKILL);
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  exit_code_ = r == pid_ ? DecodeWaitStatus(status) : -1;
  reaped_ = true;
}

int Subprocess::Wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  if (reaped_) return exit_code_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!PeekExited(pid_)) {
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Reap();
  return exit_code_;
}

int Subprocess::Stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return -1;
  if (reaped_) return exit_code_;
  if (!PeekExited(pid_)) {
    kill(-pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (!PeekExited(pid_) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  Reap();  // SIGKILLs the group, the leader too if it ignored SIGTERM
  return exit_code_;
}

std::string Subprocess::LogTail(size_t max_bytes) const {
  return ReadFileTail(log_file_, max_bytes);
}

std::string ReadFileTail(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return "";
  const std::streamoff size = in.tellg();
  const std::streamoff start = size > static_cast<std::streamoff>(max_bytes)
                                   ? size - static_cast<std::streamoff>(max_bytes)
                                   : 0;
  in.seekg(start);
  std::string out(static_cast<size_t>(size - start), '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

CommandResult RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                         const std::map<std::string, std::string>& env) {
  CommandResult result;
  if (argv.empty()) {
    result.exit_code = 127;
    result.output = "RunCommand: empty argv";
    return result;
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    result.exit_code = 127;
    result.output = std::string("pipe: ") + std::strerror(errno);
    return result;
  }
  SpawnArgs args(argv, env);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  pid_t pid = -1;
  int rc = Spawn(&pid, args, &actions);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    result.exit_code = 127;
    result.output = "cannot run " + argv[0] + ": " + std::strerror(rc);
    return result;
  }

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  char buffer[65536];
  while (true) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    int ready = poll(&p, 1, 100);
    if (ready < 0 && errno != EINTR) break;
    if (ready > 0) {
      ssize_t n = read(fds[0], buffer, sizeof(buffer));
      if (n > 0) {
        result.output.append(buffer, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) break;  // every writer closed: the command is done or detached
      if (errno != EINTR && errno != EAGAIN) break;
    } else if (PeekExited(pid)) {
      // The command exited but something it started still holds the pipe: take what is
      // there and stop waiting for more.
      fcntl(fds[0], F_SETFL, O_NONBLOCK);
      ssize_t n;
      while ((n = read(fds[0], buffer, sizeof(buffer))) > 0) {
        result.output.append(buffer, static_cast<size_t>(n));
      }
      break;
    }
  }
  close(fds[0]);

  // Output is complete; give the command the rest of the deadline to exit.
  while (!timed_out && !PeekExited(pid)) {
    if (std::chrono::steady_clock::now() >= deadline) {
      timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(-pid, SIGKILL);  // the group: a timed-out command, or what an exited one left behind
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  if (timed_out) {
    result.exit_code = -1;
    result.output += "\n[killed after " + std::to_string(timeout.count()) + " ms]";
  } else {
    result.exit_code = r == pid ? DecodeWaitStatus(status) : -1;
  }
  return result;
}

}  // namespace manifold::test
