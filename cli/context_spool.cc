#include "cli/context_spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "common/digest.h"
#include "common/tar.h"

namespace manifold {

Result<ContextSpool> ContextSpool::Pack(
    const std::string& context_dir, const std::function<bool(const std::string&, bool)>& exclude,
    const std::string& temp_dir, uint64_t limit_bytes) {
  ContextSpool spool;
  std::string path = temp_dir + "/manifold-context-XXXXXX";
  spool.fd_ = mkostemp(path.data(), O_CLOEXEC);
  if (spool.fd_ < 0) {
    return Status::FailedPrecondition("cannot create a temp file in " + temp_dir +
                                      " to pack the build context: " + std::strerror(errno) +
                                      "; set TMPDIR to a writable directory");
  }
  unlink(path.c_str());  // the descriptor keeps it; nothing is left if the CLI dies
  Sha256 hash;
  Status status = WriteTar(context_dir, exclude, [&](std::string_view bytes) {
    hash.Update(bytes);
    spool.size_ += bytes.size();
    if (spool.size_ > limit_bytes) return Status::Ok();  // only counted, to report the size
    while (!bytes.empty()) {
      ssize_t n = write(spool.fd_, bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        return Status::FailedPrecondition("cannot write the packed build context to " + temp_dir +
                                          ": " + std::strerror(errno) +
                                          "; set TMPDIR to a directory with room for it");
      }
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  spool.digest_ = hash.Finish();
  return spool;
}

ContextSpool::ContextSpool(ContextSpool&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), size_(other.size_), digest_(std::move(other.digest_)) {}

ContextSpool& ContextSpool::operator=(ContextSpool&& other) noexcept {
  std::swap(fd_, other.fd_);
  size_ = other.size_;
  digest_ = std::move(other.digest_);
  return *this;
}

ContextSpool::~ContextSpool() { Release(); }

void ContextSpool::Release() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

std::string SpoolDirectory(const EnvLookup& env) {
  std::optional<std::string> tmpdir = env ? env("TMPDIR") : std::nullopt;
  return tmpdir && !tmpdir->empty() ? *tmpdir : "/tmp";
}

}  // namespace manifold
