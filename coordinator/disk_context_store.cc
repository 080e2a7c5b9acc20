#include "coordinator/disk_context_store.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "common/digest.h"

namespace manifold {
namespace {

namespace fs = std::filesystem;

constexpr size_t kHashBuffer = 1 << 20;

std::string Errno() { return std::strerror(errno); }

DiskContextStore::FileId IdOf(const struct stat& st) { return {st.st_ino, st.st_size, st.st_mtim}; }

// The identity of the file at `path`, nullopt if there is none.
std::optional<DiskContextStore::FileId> IdAt(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return std::nullopt;
  return IdOf(st);
}

Result<DiskContextStore::FileId> IdOfFd(int fd, const std::string& path) {
  struct stat st;
  if (fstat(fd, &st) != 0) return Status::Internal("cannot stat " + path + ": " + Errno());
  return IdOf(st);
}

// The digest of what `fd` holds, read with pread so that the descriptor can be shared.
Result<std::string> HashFd(int fd, const std::string& path) {
  Sha256 sha;
  std::vector<char> buffer(kHashBuffer);
  for (off_t offset = 0;;) {
    ssize_t n = pread(fd, buffer.data(), buffer.size(), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Internal("cannot read " + path + ": " + Errno());
    if (n == 0) break;
    sha.Update(buffer.data(), static_cast<size_t>(n));
    offset += n;
  }
  return sha.Finish();
}

Status FsyncDirectory(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::Internal("cannot open " + dir + ": " + Errno());
  int synced = fsync(fd);
  close(fd);
  if (synced != 0) return Status::Internal("cannot sync " + dir + ": " + Errno());
  return Status::Ok();
}

bool IsTemporary(const std::string& name) { return name.find(".tmp.") != std::string::npos; }

constexpr std::chrono::minutes kStaleUpload{15};

// "sha256:HEX" for a stored file's name HEX.tar, "" for any other name.
std::string DigestOfFile(const std::string& name) {
  if (!name.ends_with(".tar")) return "";
  std::string digest = "sha256:" + name.substr(0, name.size() - 4);
  return IsValidDigest(digest) ? digest : "";
}

class DiskContextReader final : public ContextReader {
 public:
  DiskContextReader(int fd, uint64_t size) : fd_(fd), size_(size) {}
  ~DiskContextReader() override { close(fd_); }
  uint64_t size() const override { return size_; }
  Result<size_t> ReadAt(uint64_t offset, char* buffer, size_t length) override {
    for (;;) {
      ssize_t n = pread(fd_, buffer, length, static_cast<off_t>(offset));
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return Status::Internal("cannot read a stored context: " + Errno());
    }
  }

 private:
  const int fd_;
  const uint64_t size_;
};

}  // namespace

bool DiskContextStore::FileId::operator==(const FileId& other) const {
  return inode == other.inode && size == other.size && mtime.tv_sec == other.mtime.tv_sec &&
         mtime.tv_nsec == other.mtime.tv_nsec;
}

class DiskContextStore::Writer final : public ContextWriter {
 public:
  Writer(DiskContextStore& store, int fd, std::string temp_path)
      : store_(store), fd_(fd), temp_path_(std::move(temp_path)) {}
  ~Writer() override { Abort(); }

  Status Append(std::string_view chunk) override {
    if (fd_ < 0) return Status::FailedPrecondition("the context's upload already ended");
    sha_.Update(chunk);
    size_ += chunk.size();
    while (!chunk.empty()) {
      ssize_t n = write(fd_, chunk.data(), chunk.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        Status failed = Status::Internal("cannot write the context to " + temp_path_ + ": " +
                                         Errno() + " (is the state directory's disk full?)");
        Abort();
        return failed;
      }
      chunk.remove_prefix(static_cast<size_t>(n));
    }
    return Status::Ok();
  }

  Status Commit(std::string_view digest) override {
    if (fd_ < 0) return Status::FailedPrecondition("the context's upload already ended");
    std::string actual = sha_.Finish();
    if (actual != digest) {
      Abort();
      return Status::InvalidArgument(
          "the uploaded context's bytes hash to " + actual + ", not " + std::string(digest) +
          ", so it was not stored: the upload was cut or changed on the way, or the digest in "
          "the URL is not the archive's; upload it again with the digest of its bytes");
    }
    if (fsync(fd_) != 0) {
      Status failed = Status::Internal("cannot sync " + temp_path_ + ": " + Errno());
      Abort();
      return failed;
    }
    Result<FileId> id = IdOfFd(fd_, temp_path_);
    close(fd_);
    fd_ = -1;
    std::string final_path = store_.FileFor(digest);
    if (!id.ok() || rename(temp_path_.c_str(), final_path.c_str()) != 0) {
      Status failed =
          id.ok() ? Status::Internal("cannot store the context as " + final_path + ": " + Errno())
                  : id.status();
      unlink(temp_path_.c_str());
      return failed;
    }
    // The rename is durable only once the directory is.
    if (Status synced = FsyncDirectory(store_.dir_); !synced.ok()) return synced;
    store_.Remember(digest, *id);
    return Status::Ok();
  }

  uint64_t size() const override { return size_; }

 private:
  void Abort() {
    if (fd_ < 0) return;
    close(fd_);
    fd_ = -1;
    unlink(temp_path_.c_str());
  }

  DiskContextStore& store_;
  int fd_;
  const std::string temp_path_;
  Sha256 sha_;
  uint64_t size_ = 0;
};

Result<std::unique_ptr<DiskContextStore>> DiskContextStore::Create(const std::string& state_dir) {
  std::string dir = (fs::path(state_dir) / "contexts").string();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return Status::Internal("cannot create the state directory " + dir + ": " + ec.message() +
                            " (check --state-dir and its permissions)");
  }
  // No upload of this process is under way yet, but another coordinator sharing the state
  // dir may be writing one (an upload writes as its bytes arrive): a temporary file left
  // untouched this long is a crashed upload's.
  int swept = 0;
  const auto stale = fs::file_time_type::clock::now() - kStaleUpload;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    std::error_code ignored;
    if (IsTemporary(entry.path().filename().string()) && entry.last_write_time(ignored) < stale &&
        !ignored && fs::remove(entry.path(), ignored)) {
      ++swept;
    }
  }
  if (ec) return Status::Internal("cannot list " + dir + ": " + ec.message());
  if (swept > 0) spdlog::info("removed {} unfinished context upload(s) from {}", swept, dir);
  return std::unique_ptr<DiskContextStore>(new DiskContextStore(dir));
}

std::string DiskContextStore::FileFor(std::string_view digest) const {
  return dir_ + "/" + DigestHex(digest) + ".tar";
}

bool DiskContextStore::Has(std::string_view digest) {
  Result<int> fd = OpenVerified(digest);
  if (!fd.ok()) return false;
  close(*fd);
  return true;
}

Result<std::unique_ptr<ContextWriter>> DiskContextStore::Put() {
  static std::atomic<uint64_t> counter{0};
  std::string temp_path =
      dir_ + "/.tmp." + std::to_string(getpid()) + "." + std::to_string(counter.fetch_add(1));
  int fd = open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Status::Internal("cannot create " + temp_path + ": " + Errno() +
                            " (check the state directory's disk and permissions)");
  }
  return std::unique_ptr<ContextWriter>(new Writer(*this, fd, temp_path));
}

Result<std::unique_ptr<ContextReader>> DiskContextStore::Open(std::string_view digest) {
  Result<int> fd = OpenVerified(digest);
  if (!fd.ok()) return fd.status();
  Result<FileId> id = IdOfFd(*fd, FileFor(digest));
  if (!id.ok()) {
    close(*fd);
    return id.status();
  }
  return std::unique_ptr<ContextReader>(
      new DiskContextReader(*fd, static_cast<uint64_t>(id->size)));
}

Result<int> DiskContextStore::OpenVerified(std::string_view digest) {
  const std::string missing = "the coordinator has no context " + std::string(digest);
  if (!IsValidDigest(digest)) return Status::NotFound(missing);
  const std::string path = FileFor(digest);
  // Twice at most: a put of the same digest may replace the file while it is checked.
  for (int attempt = 0; attempt < 2; ++attempt) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::NotFound(missing);
    Result<FileId> id = IdOfFd(fd, path);
    bool known = false;
    if (id.ok()) {
      std::lock_guard lock(mutex_);
      auto it = verified_.find(digest);
      known = it != verified_.end() && it->second == *id;
    }
    if (id.ok() && !known) {
      Result<std::string> actual = HashFd(fd, path);
      if (actual.ok() && *actual != digest) {
        std::lock_guard lock(mutex_);
        if (IdAt(path) == *id) {
          unlink(path.c_str());
          verified_.erase(std::string(digest));
          ++deleted_corrupt_;
          spdlog::warn(
              "deleted the stored context {}: its {} bytes hash to {} (cut by a crash or "
              "changed on disk); it counts as missing and is uploaded again",
              digest, id->size, *actual);
        }
        close(fd);
        return Status::NotFound(missing);
      }
      if (!actual.ok()) id = actual.status();
    }
    if (!id.ok()) {
      close(fd);
      return id.status();
    }
    // Touch under the mutex, and only the file still under the name: the collector
    // deletes only files it finds untouched.
    std::lock_guard lock(mutex_);
    std::optional<FileId> now_under_name = IdAt(path);
    if (!now_under_name || !now_under_name->SameFileAs(*id)) {
      close(fd);
      continue;
    }
    if (futimens(fd, nullptr) != 0) {
      Status failed = Status::Internal("cannot mark the context " + path + " used: " + Errno());
      close(fd);
      return failed;
    }
    Result<FileId> touched = IdOfFd(fd, path);
    if (!touched.ok()) {
      close(fd);
      return touched.status();
    }
    verified_[std::string(digest)] = *touched;
    return fd;
  }
  return Status::NotFound(missing);
}

void DiskContextStore::Remember(std::string_view digest, const FileId& id) {
  std::lock_guard lock(mutex_);
  verified_[std::string(digest)] = id;
}

bool DiskContextStore::DeleteIfUnchanged(std::string_view digest, const FileId& id) {
  std::string path = FileFor(digest);
  if (IdAt(path) != id || unlink(path.c_str()) != 0) return false;
  verified_.erase(std::string(digest));
  return true;
}

Result<ContextCollection> DiskContextStore::Collect(const ContextRetention& retention,
                                                    const std::set<std::string>& needed) {
  struct Stored {
    std::string digest;
    FileId id;
    bool deleted = false;
  };
  std::vector<Stored> stored;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir_, ec)) {
    std::string digest = DigestOfFile(entry.path().filename().string());
    if (digest.empty()) continue;
    if (std::optional<FileId> id = IdAt(entry.path().string())) stored.push_back({digest, *id});
  }
  if (ec) return Status::Internal("cannot list " + dir_ + ": " + ec.message());
  // Least recently used first.
  std::sort(stored.begin(), stored.end(), [](const Stored& a, const Stored& b) {
    return std::tie(a.id.mtime.tv_sec, a.id.mtime.tv_nsec) <
           std::tie(b.id.mtime.tv_sec, b.id.mtime.tv_nsec);
  });

  ContextCollection result;
  for (const Stored& s : stored) result.bytes_stored += static_cast<uint64_t>(s.id.size);
  const auto now = std::chrono::system_clock::now();
  auto unused_for = [&](const Stored& s) {
    return now - (std::chrono::system_clock::from_time_t(s.id.mtime.tv_sec) +
                  std::chrono::nanoseconds(s.id.mtime.tv_nsec));
  };
  auto drop = [&](Stored& s) {
    std::lock_guard lock(mutex_);
    if (!DeleteIfUnchanged(s.digest, s.id)) return false;
    s.deleted = true;
    result.bytes_stored -= static_cast<uint64_t>(s.id.size);
    return true;
  };
  for (Stored& s : stored) {
    if (retention.max_age.count() == 0 || needed.contains(s.digest)) continue;
    if (unused_for(s) > retention.max_age && drop(s)) ++result.deleted_by_age;
  }
  for (Stored& s : stored) {
    if (retention.max_bytes == 0 || result.bytes_stored <= retention.max_bytes) break;
    if (s.deleted || needed.contains(s.digest) || unused_for(s) < retention.grace) continue;
    if (drop(s)) ++result.deleted_by_size;
  }
  std::set<std::string, std::less<>> kept;
  for (const Stored& s : stored) {
    if (!s.deleted) kept.insert(s.digest);
  }
  result.contexts_stored = kept.size();
  std::lock_guard lock(mutex_);
  result.deleted_corrupt = std::exchange(deleted_corrupt_, 0);
  // Files removed by hand are forgotten too, so the map stays as large as the directory (a
  // put committed since the listing is only hashed once more).
  std::erase_if(verified_, [&](const auto& entry) { return !kept.contains(entry.first); });
  return result;
}

}  // namespace manifold
