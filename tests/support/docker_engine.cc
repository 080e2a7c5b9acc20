#include "tests/support/docker_engine.h"

#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/wait.h"

namespace manifold::test {
namespace {

namespace fs = std::filesystem;

std::string ReadWholeFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

// Pids of live processes whose command line contains `text`.
std::vector<pid_t> ProcessesNaming(const std::string& text) {
  std::vector<pid_t> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = static_cast<pid_t>(std::stol(name));
    if (pid == getpid()) continue;
    if (ReadWholeFile(entry.path() / "cmdline").find(text) != std::string::npos) {
      found.push_back(pid);
    }
  }
  return found;
}

}  // namespace

DockerEngine::~DockerEngine() { Stop(); }

std::string DockerEngine::socket_path() const { return dir_ ? dir_->path() + "/docker.sock" : ""; }

std::string DockerEngine::host() const { return "unix://" + socket_path(); }

Status DockerEngine::Start(const DockerEngineOptions& options) {
  if (dir_) return Status::FailedPrecondition("the Docker engine was already started");
  dir_ = std::make_unique<TempDir>("manifold-docker");
  std::vector<std::string> drivers = {options.storage_driver};
  if (options.storage_driver.empty()) drivers = {"overlay2", "vfs"};
  Status last;
  for (const std::string& driver : drivers) {
    last = Launch(driver, options);
    if (last.ok()) {
      storage_driver_ = driver;
      return last;
    }
    // What a failed start left behind must not confuse the next driver.
    process_.Stop(std::chrono::seconds(10));
    KillLeftovers();
    UnmountAll();
    std::error_code ec;
    fs::remove_all(dir_->path() + "/data", ec);
  }
  Stop();
  return last;
}

Status DockerEngine::Launch(const std::string& driver, const DockerEngineOptions& options) {
  const std::string& dir = dir_->path();
  std::error_code ec;
  fs::create_directories(dir + "/data", ec);
  fs::create_directories(dir + "/run", ec);
  // An empty configuration, so that the host's /etc/docker/daemon.json cannot change it.
  std::ofstream(dir + "/daemon.json") << "{}\n";
  std::vector<std::string> argv = {"dockerd",
                                   "--config-file=" + dir + "/daemon.json",
                                   "--data-root=" + dir + "/data",
                                   "--exec-root=" + dir + "/run",
                                   "--pidfile=" + dir + "/dockerd.pid",
                                   "--host=" + host(),
                                   "--storage-driver=" + driver,
                                   "--iptables=false",
                                   "--ip6tables=false",
                                   "--ip-forward=false",
                                   "--ip-masq=false",
                                   "--bridge=none",
                                   "--userland-proxy=false",
                                   "--shutdown-timeout=5"};
  for (const std::string& mirror : options.registry_mirrors) {
    argv.push_back("--registry-mirror=" + mirror);
  }
  const std::string log = dir + "/dockerd.log";
  std::ofstream(log, std::ios::app)
      << "---- manifold test: starting dockerd with " << driver << " ----\n";
  if (Status s = process_.Start(argv, {}, log); !s.ok()) {
    return s.WithContext("starting dockerd (Debian package docker.io)");
  }
  bool settled =
      WaitFor([&] { return !process_.Running() || Ping(); },
              std::chrono::duration_cast<std::chrono::milliseconds>(options.start_timeout),
              std::chrono::milliseconds(100));
  if (settled && process_.Running()) return Status::Ok();
  std::string why = process_.Running() ? "did not answer on " + host() + " within " +
                                             std::to_string(options.start_timeout.count()) + " s"
                                       : "exited during start-up";
  return Status::Unavailable("dockerd with storage driver " + driver + " " + why +
                             "; its log ends with:\n" + LogTail());
}

bool DockerEngine::Ping() const {
  if (!dir_) return false;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un address = {};
  address.sun_family = AF_UNIX;
  std::string path = socket_path();
  if (path.size() >= sizeof(address.sun_path)) {
    close(fd);
    return false;
  }
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  timeval timeout = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
    const std::string request = "GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n";
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buffer[512];
      ssize_t n;
      while (response.size() < 4096 && (n = recv(fd, buffer, sizeof(buffer), 0)) > 0) {
        response.append(buffer, static_cast<size_t>(n));
      }
    }
  }
  close(fd);
  return response.rfind("HTTP/1.1 200", 0) == 0 || response.rfind("HTTP/1.0 200", 0) == 0;
}

void DockerEngine::KillLeftovers() const {
  // containerd runs in a session of its own and the shims in theirs, so stopping
  // dockerd's process group does not reach them; all of them name this directory.
  const std::string marker = dir_->path() + "/";
  for (pid_t pid : ProcessesNaming(marker)) kill(pid, SIGKILL);
  WaitFor(
      [&] {
        for (pid_t pid : ProcessesNaming(marker)) {
          // A zombie has an empty command line and is not found; a live one still counts.
          if (kill(pid, 0) == 0) return false;
        }
        return true;
      },
      std::chrono::seconds(10), std::chrono::milliseconds(50));
}

void DockerEngine::UnmountAll() const {
  const std::string prefix = dir_->path() + "/";
  std::vector<std::string> mounts;
  std::istringstream mountinfo(ReadWholeFile("/proc/self/mountinfo"));
  std::string line;
  while (std::getline(mountinfo, line)) {
    std::istringstream fields(line);
    std::string id, parent, device, root, mount_point;
    fields >> id >> parent >> device >> root >> mount_point;
    if (mount_point.rfind(prefix, 0) == 0) mounts.push_back(mount_point);
  }
  // Deepest first, so no mount is hidden under another when its turn comes.
  std::sort(mounts.begin(), mounts.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const std::string& mount_point : mounts) umount2(mount_point.c_str(), MNT_DETACH);
}

void DockerEngine::Stop() {
  if (!dir_) return;
  process_.Stop(std::chrono::seconds(20));
  KillLeftovers();
  UnmountAll();
  dir_.reset();
}

std::string DockerEngine::LogTail(size_t max_bytes) const {
  return dir_ ? ReadFileTail(dir_->path() + "/dockerd.log", max_bytes) : "";
}

}  // namespace manifold::test
