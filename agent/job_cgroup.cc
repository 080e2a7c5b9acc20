#include "agent/job_cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/digest.h"

namespace manifold {

namespace fs = std::filesystem;

namespace {

constexpr const char* kCgroupFs = "/sys/fs/cgroup";
constexpr uint64_t kCpuPeriodMicros = 100000;
// A v1 memory cgroup's peak reaches its limit when a step is killed for memory; the slack
// covers the kernel charging in pages and batches.
constexpr uint64_t kMemoryPeakSlack = 1 << 20;

Status WriteCgroupFile(const std::string& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Status::Internal("cannot open " + path + ": " + std::strerror(errno));
  ssize_t n = ::write(fd, value.data(), value.size());
  int error = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(value.size())) {
    return Status::Internal("cannot write '" + value + "' to " + path + ": " +
                            std::strerror(error));
  }
  return Status::Ok();
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The number after "key " in a flat-keyed cgroup file ("max 3\n", "oom_kill 1\n"); 0 if none.
uint64_t KeyedValue(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string name;
  uint64_t value = 0;
  while (in >> name >> value) {
    if (name == key) return value;
  }
  return 0;
}

uint64_t NumberIn(const std::string& text) {
  try {
    return text.empty() ? 0 : std::stoull(text);
  } catch (const std::exception&) {
    return 0;  // "max": no number
  }
}

// Removes a cgroup and everything below it; processes still in it are killed first (a
// killed agent's builds), since a cgroup with processes cannot be removed.
void RemoveCgroupTree(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_directory(ec) && !entry.is_symlink(ec)) RemoveCgroupTree(entry.path());
  }
  for (int attempt = 0; attempt < 100; ++attempt) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
    std::istringstream procs(ReadText((dir / "cgroup.procs").string()));
    for (pid_t pid = 0; procs >> pid;) ::kill(pid, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// v1: the mounted hierarchies, each a directory of /sys/fs/cgroup ("cpu,cpuacct" and its
// "cpu" link count once). The v2 mount of a hybrid host ("unified") is among them: runc
// makes the steps' cgroups there too.
std::vector<fs::path> V1Hierarchies() {
  std::vector<fs::path> hierarchies;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(kCgroupFs, ec)) {
    if (entry.is_symlink(ec) || !entry.is_directory(ec)) continue;
    hierarchies.push_back(entry.path());
  }
  return hierarchies;
}

// v2: the agent's own cgroup, from /proc/self/cgroup ("0::/system.slice/x.service").
std::string OwnV2Cgroup() {
  std::istringstream lines(ReadText("/proc/self/cgroup"));
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  }
  return "/";
}

Status EnableControllers(const fs::path& dir) {
  return WriteCgroupFile((dir / "cgroup.subtree_control").string(), "+memory +pids +cpu");
}

Status CannotUse(const std::string& what, const Status& why) {
  return Status::FailedPrecondition(
      "per-job limits need a cgroup the agent may manage, and " + what + " failed (" +
      why.message() +
      "); run the agent as root, under systemd with Delegate=yes "
      "(ops/systemd/manifold-agent.service), or give it --job-memory 0 --job-cpus 0 "
      "--job-pids 0 to run jobs without limits");
}

}  // namespace

JobCgroup::JobCgroup(bool v2, std::vector<std::string> dirs, std::string steps_parent,
                     JobLimits limits)
    : v2_(v2), dirs_(std::move(dirs)), steps_parent_(std::move(steps_parent)), limits_(limits) {}

JobCgroup::~JobCgroup() {
  for (const std::string& dir : dirs_) RemoveCgroupTree(dir);
}

std::string JobCgroup::ReadFile(const std::string& name) const {
  std::error_code ec;
  for (const std::string& dir : dirs_) {
    if (fs::exists(dir + "/" + name, ec)) return ReadText(dir + "/" + name);
  }
  return "";
}

std::optional<JobLimit> JobCgroup::LimitReached() const {
  if (limits_.memory_bytes != 0) {
    uint64_t peak = NumberIn(ReadFile(v2_ ? "memory.peak" : "memory.max_usage_in_bytes"));
    std::string events = ReadFile(v2_ ? "memory.events" : "memory.oom_control");
    if (KeyedValue(events, "oom_kill") > 0 || NumberIn(ReadFile("memory.failcnt")) > 0 ||
        (!v2_ && peak + kMemoryPeakSlack >= limits_.memory_bytes)) {
      return JobLimit::kMemory;
    }
  }
  if (limits_.pids != 0) {
    if (KeyedValue(ReadFile("pids.events"), "max") > 0 ||
        NumberIn(ReadFile("pids.peak")) >= limits_.pids) {
      return JobLimit::kPids;
    }
  }
  return std::nullopt;
}

JobCgroups::JobCgroups(bool v2, std::vector<std::string> roots, std::string relative_root)
    : v2_(v2), roots_(std::move(roots)), relative_root_(std::move(relative_root)) {}

JobCgroups::~JobCgroups() {
  for (const std::string& root : roots_) RemoveCgroupTree(root);
}

Result<std::unique_ptr<JobCgroups>> JobCgroups::Open(const std::string& work_dir) {
  std::error_code ec;
  std::string hash =
      DigestHex(Sha256Digest(fs::absolute(work_dir, ec).lexically_normal().string())).substr(0, 12);
  bool v2 = fs::exists(std::string(kCgroupFs) + "/cgroup.controllers", ec);
  std::vector<std::string> roots;
  std::string relative;
  if (!v2) {
    relative = "/manifold-agent-" + hash;
    for (const fs::path& hierarchy : V1Hierarchies())
      roots.push_back(hierarchy.string() + relative);
    if (roots.empty()) {
      return CannotUse("finding cgroup hierarchies",
                       Status::NotFound(std::string("nothing under ") + kCgroupFs));
    }
  } else {
    std::string own = OwnV2Cgroup();
    fs::path base = fs::path(kCgroupFs) / own.substr(1);
    // v2 allows controllers below a cgroup only when no process sits in it (the root of a
    // container's cgroup namespace included): the agent moves into a leaf of its own first
    // (the builds it starts follow it there).
    fs::path leaf = base / ("agent-" + hash);
    fs::create_directories(leaf, ec);
    if (ec) return CannotUse("creating " + leaf.string(), Status::Internal(ec.message()));
    if (Status s = WriteCgroupFile((leaf / "cgroup.procs").string(), std::to_string(getpid()));
        !s.ok()) {
      return CannotUse("moving the agent into " + leaf.string(), s);
    }
    if (Status s = EnableControllers(base); !s.ok()) return CannotUse("delegation", s);
    relative = (own == "/" ? "" : own) + "/jobs-" + hash;
    roots.push_back(std::string(kCgroupFs) + relative);
  }
  for (const std::string& root : roots) {
    // A killed agent's jobs; nothing else lives under this agent's root.
    for (const fs::directory_entry& entry : fs::directory_iterator(root, ec)) {
      if (entry.is_directory(ec) && !entry.is_symlink(ec)) RemoveCgroupTree(entry.path());
    }
    ec.clear();
  }
  auto cgroups = std::unique_ptr<JobCgroups>(new JobCgroups(v2, roots, relative));
  // Proves the agent may manage cgroups here now, rather than at its first job.
  Result<std::unique_ptr<JobCgroup>> probe = cgroups->Create("probe", JobLimits{.pids = 1});
  if (!probe.ok()) return CannotUse("creating a job's cgroup", probe.status());
  return cgroups;
}

Result<std::unique_ptr<JobCgroup>> JobCgroups::Create(const std::string& name,
                                                      const JobLimits& limits) {
  std::vector<std::string> dirs;
  for (const std::string& root : roots_) dirs.push_back(root + "/" + name);
  auto cgroup = std::unique_ptr<JobCgroup>(
      new JobCgroup(v2_, dirs, relative_root_ + "/" + name + "/steps", limits));
  // The directory of the hierarchy that has controller `controller`.
  auto dir_of = [&](const std::string& controller) -> std::string {
    if (v2_) return dirs.front();
    for (const std::string& dir : dirs) {
      std::string hierarchy = fs::path(dir).parent_path().parent_path().filename().string();
      std::istringstream names(hierarchy);
      for (std::string part; std::getline(names, part, ',');) {
        if (part == controller) return dir;
      }
    }
    return "";
  };
  auto set = [&](const std::string& controller, const std::string& file, const std::string& value,
                 bool required) -> Status {
    std::string dir = dir_of(controller);
    if (dir.empty()) {
      return required ? Status::FailedPrecondition("this host has no " + controller +
                                                   " cgroup controller")
                      : Status::Ok();
    }
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return Status::Internal("cannot create cgroup " + dir + ": " + ec.message());
    if (v2_ && !fs::exists(dir + "/" + file, ec)) {
      if (Status s = EnableControllers(fs::path(dir).parent_path()); !s.ok()) return s;
    }
    Status written = WriteCgroupFile(dir + "/" + file, value);
    return required || fs::exists(dir + "/" + file, ec) ? written : Status::Ok();
  };
  const std::string memory = std::to_string(limits.memory_bytes);
  const std::string quota = std::to_string(limits.cpu_millis * kCpuPeriodMicros / 1000);
  const std::string period = std::to_string(kCpuPeriodMicros);
  Status statuses[] = {
      limits.memory_bytes == 0
          ? Status::Ok()
          : set("memory", v2_ ? "memory.max" : "memory.limit_in_bytes", memory, true),
      // No swapping past the limit, where the host has swap accounting.
      limits.memory_bytes == 0
          ? Status::Ok()
          : set("memory", v2_ ? "memory.swap.max" : "memory.memsw.limit_in_bytes",
                v2_ ? "0" : memory, false),
      limits.cpu_millis == 0 ? Status::Ok()
      : v2_                  ? set("cpu", "cpu.max", quota + " " + period, true)
                             : set("cpu", "cpu.cfs_period_us", period, true),
      limits.cpu_millis == 0 || v2_ ? Status::Ok() : set("cpu", "cpu.cfs_quota_us", quota, true),
      limits.pids == 0 ? Status::Ok() : set("pids", "pids.max", std::to_string(limits.pids), true),
  };
  for (const Status& status : statuses) {
    if (!status.ok()) return status.WithContext("setting the limits of job cgroup " + name);
  }
  return cgroup;
}

}  // namespace manifold
