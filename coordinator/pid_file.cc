#include "coordinator/pid_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace manifold {

Status PidFile::Write(const std::string& path) {
  const std::string text = std::to_string(getpid()) + "\n";
  const std::string temporary = path + ".tmp." + std::to_string(getpid());
  // /run/manifold does not survive a reboot; without systemd's RuntimeDirectory= nobody
  // else makes it. A failure shows up as the open's error below.
  std::error_code ignored;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ignored);
  int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  bool written =
      fd >= 0 && write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  int error = errno;
  if (fd >= 0 && close(fd) != 0 && written) {
    written = false;
    error = errno;
  }
  if (written && rename(temporary.c_str(), path.c_str()) != 0) {
    written = false;
    error = errno;
  }
  if (!written) {
    unlink(temporary.c_str());
    return Status::FailedPrecondition("cannot write --pid-file " + path + ": " +
                                      std::strerror(error) +
                                      " (choose a path this user may write)");
  }
  path_ = path;
  return Status::Ok();
}

PidFile::~PidFile() {
  if (path_.empty()) return;
  std::ifstream in(path_);
  std::string pid;
  if (in >> pid && pid == std::to_string(getpid())) unlink(path_.c_str());
}

}  // namespace manifold
