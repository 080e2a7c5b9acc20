#include "agent/secret_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

namespace manifold {

namespace fs = std::filesystem;

namespace {

// Writes all of bytes to a new file of mode 0600; false on any failure.
bool WriteNewFile(const std::string& path, const std::string& bytes) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return false;
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  return close(fd) == 0 && done == bytes.size();
}

// Overwrites a file's bytes with zeros before it is removed, so that its blocks do not keep
// the secret on a file system that reuses them.
void Overwrite(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return;
  struct stat st {};
  if (fstat(fd, &st) == 0 && st.st_size > 0) {
    std::vector<char> zeros(static_cast<size_t>(st.st_size), '\0');
    ssize_t ignored = write(fd, zeros.data(), zeros.size());
    (void)ignored;
    fsync(fd);
  }
  close(fd);
}

}  // namespace

Result<SecretFiles> SecretFiles::Write(const std::map<std::string, std::string>& secrets,
                                       const std::string& parent_dir,
                                       const std::string& fallback_dir) {
  SecretFiles files;
  if (secrets.empty()) return files;
  std::error_code ec;
  const std::string parent = fs::is_directory(parent_dir, ec) ? parent_dir : fallback_dir;
  std::string pattern = parent + "/manifold-secrets-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {  // mode 0700
    return Status::Internal("cannot create a private directory for the build secrets under " +
                            parent + ": " + std::strerror(errno));
  }
  files.dir_ = pattern;
  size_t n = 0;
  for (const auto& [id, bytes] : secrets) {
    std::string path = files.dir_ + "/" + std::to_string(n++);
    if (!WriteNewFile(path, bytes)) {
      return Status::Internal("cannot write build secret \"" + id + "\" under " + files.dir_ +
                              ": " + std::strerror(errno));
    }
    files.files_[id] = path;
  }
  return files;
}

SecretFiles::SecretFiles(SecretFiles&& other) noexcept
    : dir_(std::exchange(other.dir_, {})), files_(std::exchange(other.files_, {})) {}

SecretFiles& SecretFiles::operator=(SecretFiles&& other) noexcept {
  if (this != &other) {
    Erase();
    dir_ = std::exchange(other.dir_, {});
    files_ = std::exchange(other.files_, {});
  }
  return *this;
}

SecretFiles::~SecretFiles() { Erase(); }

void SecretFiles::Erase() {
  if (dir_.empty()) return;
  for (const auto& [id, path] : files_) Overwrite(path);
  std::error_code ec;
  fs::remove_all(dir_, ec);
  dir_.clear();
  files_.clear();
}

}  // namespace manifold
