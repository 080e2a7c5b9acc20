#include "agent/disk_usage.h"

#include <sys/stat.h>

#include <filesystem>
#include <set>
#include <utility>

namespace manifold {

namespace fs = std::filesystem;

uint64_t DiskUsage(const std::string& root) {
  struct stat top = {};
  if (::lstat(root.c_str(), &top) != 0) return 0;
  uint64_t bytes = static_cast<uint64_t>(top.st_blocks) * 512;
  std::set<std::pair<dev_t, ino_t>> linked;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec),
       end;
       !ec && it != end; it.increment(ec)) {
    struct stat entry = {};
    if (::lstat(it->path().c_str(), &entry) != 0) continue;
    if (entry.st_dev != top.st_dev) {
      it.disable_recursion_pending();
      continue;
    }
    if (entry.st_nlink > 1 && !S_ISDIR(entry.st_mode) &&
        !linked.insert({entry.st_dev, entry.st_ino}).second) {
      continue;
    }
    bytes += static_cast<uint64_t>(entry.st_blocks) * 512;
  }
  return bytes;
}

}  // namespace manifold
