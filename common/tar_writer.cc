// WriteTar (tar.h): a directory tree into a deterministic archive, streamed to a sink.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <vector>

#include "common/tar.h"
#include "common/tar_format.h"

namespace manifold {
namespace tar {
namespace {

struct SourceEntry {
  std::string relative;
  mode_t mode;
};

const char* DescribeSpecialFile(mode_t mode) {
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISFIFO(mode)) return "a fifo";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "of an unknown file type";
}

// Lists `relative` (under `root`) recursively into `out`, applying `exclude`.
Status CollectEntries(const std::string& root, const std::string& relative,
                      const std::function<bool(const std::string&, bool)>& exclude,
                      std::vector<SourceEntry>* out) {
  std::string dir_path = relative.empty() ? root : root + "/" + relative;
  std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir(dir_path.c_str()), closedir);
  if (!dir)
    return Status::Internal("cannot list directory " + Quote(dir_path) + ": " + ErrnoText());
  std::vector<std::string> names;
  while (true) {
    errno = 0;  // readdir returns nullptr both at the end and on error
    dirent* child = readdir(dir.get());
    if (child == nullptr) break;
    std::string_view name = child->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  if (errno != 0) {
    return Status::Internal("cannot list directory " + Quote(dir_path) + ": " + ErrnoText());
  }
  for (const std::string& name : names) {
    std::string child = relative.empty() ? name : relative + "/" + name;
    std::string child_path = root + "/" + child;
    struct stat st;
    if (lstat(child_path.c_str(), &st) != 0) {
      return Status::Internal("cannot stat " + Quote(child_path) + ": " + ErrnoText());
    }
    bool is_dir = S_ISDIR(st.st_mode);
    if (exclude && exclude(child, is_dir)) continue;
    if (!S_ISREG(st.st_mode) && !is_dir && !S_ISLNK(st.st_mode)) {
      return Status::InvalidArgument(Quote(child_path) + " is " + DescribeSpecialFile(st.st_mode) +
                                     "; a build context may hold only regular files, "
                                     "directories and symlinks: remove or exclude it");
    }
    out->push_back({child, st.st_mode});
    if (is_dir) {
      if (Status s = CollectEntries(root, child, exclude, out); !s.ok()) return s;
    }
  }
  return Status::Ok();
}

Result<std::string> ReadSymlink(const std::string& path, size_t size_hint) {
  std::string target(size_hint + 1, '\0');
  while (true) {
    ssize_t n = readlink(path.c_str(), target.data(), target.size());
    if (n < 0) return Status::Internal("cannot read symlink " + Quote(path) + ": " + ErrnoText());
    if (static_cast<size_t>(n) < target.size()) {
      target.resize(static_cast<size_t>(n));
      return target;
    }
    target.resize(target.size() * 2);  // it grew since lstat
  }
}

// Files are read in pieces this large, so a large file never sits whole in memory.
constexpr size_t kReadChunk = size_t{1} << 20;

Status SendHeader(const HeaderSpec& spec, const TarSink& sink) {
  std::string header;
  AppendHeader(&header, spec);
  return sink(header);
}

// Sends header and contents of one regular file, exactly the size fstat reports.
Status SendFile(const std::string& path, const std::string& relative, const TarSink& sink) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return Status::Internal("cannot open " + Quote(path) + ": " + ErrnoText());
  struct stat st;
  if (fstat(fd.get(), &st) != 0) {
    return Status::Internal("cannot stat " + Quote(path) + ": " + ErrnoText());
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::FailedPrecondition(Quote(path) +
                                      " stopped being a regular file while it was archived");
  }
  HeaderSpec spec;
  spec.path = relative;
  spec.type = kRegular;
  spec.mode = st.st_mode & 07777;
  spec.mtime = st.st_mtim.tv_sec;
  spec.size = static_cast<uint64_t>(st.st_size);
  if (Status s = SendHeader(spec, sink); !s.ok()) return s;
  std::string buffer(static_cast<size_t>(std::min<uint64_t>(spec.size, kReadChunk)), '\0');
  uint64_t done = 0;
  while (done < spec.size) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(spec.size - done, buffer.size()));
    ssize_t n = read(fd.get(), buffer.data(), want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Internal("cannot read " + Quote(path) + ": " + ErrnoText());
    if (n == 0) {
      return Status::FailedPrecondition(Quote(path) +
                                        " shrank while it was archived; archive the context "
                                        "again when nothing is writing to it");
    }
    if (Status s = sink(std::string_view(buffer.data(), static_cast<size_t>(n))); !s.ok()) {
      return s;
    }
    done += static_cast<uint64_t>(n);
  }
  std::string padding;
  AppendPadding(&padding, spec.size);
  return padding.empty() ? Status::Ok() : sink(padding);
}

Status SendEntry(const std::string& root, const SourceEntry& entry, const TarSink& sink) {
  std::string path = root + "/" + entry.relative;
  if (S_ISREG(entry.mode)) return SendFile(path, entry.relative, sink);
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    return Status::Internal("cannot stat " + Quote(path) + ": " + ErrnoText());
  }
  if ((st.st_mode & S_IFMT) != (entry.mode & S_IFMT)) {
    return Status::FailedPrecondition(Quote(path) + " changed type while it was archived");
  }
  HeaderSpec spec;
  spec.mode = st.st_mode & 07777;
  spec.mtime = st.st_mtim.tv_sec;
  if (S_ISDIR(st.st_mode)) {
    spec.path = entry.relative + "/";
    spec.type = kDirectory;
  } else {
    Result<std::string> target = ReadSymlink(path, static_cast<size_t>(st.st_size));
    if (!target.ok()) return target.status();
    spec.path = entry.relative;
    spec.type = kSymlink;
    spec.linkname = std::move(target).value();
  }
  return SendHeader(spec, sink);
}

}  // namespace
}  // namespace tar

Status WriteTar(const std::string& dir,
                const std::function<bool(const std::string&, bool)>& exclude, const TarSink& sink) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) {
    return Status::NotFound("cannot archive " + tar::Quote(dir) + ": " + tar::ErrnoText());
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument("cannot archive " + tar::Quote(dir) + ": it is not a directory");
  }
  std::vector<tar::SourceEntry> entries;
  if (Status s = tar::CollectEntries(dir, "", exclude, &entries); !s.ok()) return s;
  std::sort(
      entries.begin(), entries.end(),
      [](const tar::SourceEntry& a, const tar::SourceEntry& b) { return a.relative < b.relative; });
  for (const tar::SourceEntry& entry : entries) {
    if (Status s = tar::SendEntry(dir, entry, sink); !s.ok()) return s;
  }
  return sink(std::string(2 * tar::kBlockSize, '\0'));  // end-of-archive marker
}

Status WriteTarFromDirectory(const std::string& dir,
                             const std::function<bool(const std::string&, bool)>& exclude,
                             std::string* archive) {
  const size_t original_size = archive->size();
  Status status = WriteTar(dir, exclude, [archive](std::string_view bytes) {
    archive->append(bytes);
    return Status::Ok();
  });
  if (!status.ok()) archive->resize(original_size);
  return status;
}

}  // namespace manifold
