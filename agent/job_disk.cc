#include "agent/job_disk.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "agent/command_runner.h"

namespace manifold {

namespace fs = std::filesystem;

namespace {

// Below this much free space the job's file system counts as full (ext4 keeps a little
// back for its own metadata).
constexpr uint64_t kFullBelowBytes = 1 << 20;

Status RunTool(const std::vector<std::string>& argv) {
  std::string output;
  SubprocessRunner runner;
  Result<int> code = runner.Run(
      CommandSpec{argv, {}, ""}, [&](std::string_view text) { output += text; }, nullptr);
  if (!code.ok()) return code.status();
  if (*code != 0) {
    while (!output.empty() && output.back() == '\n') output.pop_back();
    return Status::Internal("'" + argv.front() + "' exited with status " + std::to_string(*code) +
                            ": " + output);
  }
  return Status::Ok();
}

// The mount points under dir, from /proc/self/mountinfo.
std::vector<std::string> MountsUnder(const std::string& dir) {
  std::vector<std::string> mounts;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, device, root, point;
    fields >> id >> parent >> device >> root >> point;
    if (point.rfind(dir + "/", 0) == 0) mounts.push_back(point);
  }
  return mounts;
}

void Unmount(const std::string& dir) {
  // Lazily, should a process still hold a file there: the mount goes as soon as it lets go.
  if (!RunTool({"umount", dir}).ok()) (void)RunTool({"umount", "-l", dir});
}

}  // namespace

Result<std::unique_ptr<JobDisk>> JobDisk::Mount(const std::string& dir, uint64_t bytes) {
  std::string image = dir + ".img";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::Internal("cannot create job directory " + dir + ": " + ec.message());
  // Sparse: the file takes only what the job writes.
  int fd = ::open(image.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    std::string why = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    fs::remove(image, ec);
    return Status::Internal("cannot create the job's disk image " + image + ": " + why);
  }
  ::close(fd);
  // From here on its destructor undoes what was done.
  auto disk = std::unique_ptr<JobDisk>(new JobDisk(dir, image));
  // No journal and no reserved blocks: the file system lives as long as one job.
  Status made = RunTool({"mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal", "-E",
                         "nodiscard,lazy_itable_init=1", image});
  if (!made.ok()) {
    return made.WithContext(
        "formatting the job's disk (install e2fsprogs, or run the agent "
        "with --job-disk 0 to leave job dirs unbounded)");
  }
  Status mounted = RunTool({"mount", "-o", "loop,nodev,nosuid", image, dir});
  if (!mounted.ok()) {
    return mounted.WithContext(
        "mounting the job's disk (loop devices need root and /dev/loop-control; or run the "
        "agent with --job-disk 0 to leave job dirs unbounded)");
  }
  return disk;
}

JobDisk::~JobDisk() {
  std::error_code ec;
  Unmount(dir_);
  fs::remove_all(dir_, ec);
  fs::remove(image_, ec);
}

bool JobDisk::Full() const {
  struct statvfs stats = {};
  if (::statvfs(dir_.c_str(), &stats) != 0) return false;
  return static_cast<uint64_t>(stats.f_bavail) * stats.f_frsize < kFullBelowBytes;
}

void SweepJobDisks(const std::string& jobs_dir) {
  std::error_code ec;
  for (const std::string& mount : MountsUnder(fs::absolute(jobs_dir, ec).lexically_normal())) {
    Unmount(mount);
  }
  for (const fs::directory_entry& entry : fs::directory_iterator(jobs_dir, ec)) {
    fs::remove_all(entry.path(), ec);
  }
}

}  // namespace manifold
