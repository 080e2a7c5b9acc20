// ExtractTar (tar.h): the entries tar_reader.h validated, written under the destination
// without ever following a symlink already there.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <vector>

#include "common/tar.h"
#include "common/tar_format.h"
#include "common/tar_reader.h"

namespace manifold {
namespace tar {
namespace {

Status WriteError(const std::string& path, const std::string& action) {
  return Status::Internal("extracting " + Quote(path) + ": " + action + ": " + ErrnoText());
}

// Opens (creating as needed) the directory that will hold `path`, one component at a
// time with O_NOFOLLOW, so nothing already in the destination can redirect a write.
Status OpenParent(int root, const std::string& path, UniqueFd* parent, std::string* leaf) {
  std::vector<std::string_view> parts = SplitPath(path);
  UniqueFd current(dup(root));
  if (!current.valid()) return WriteError(path, "dup");
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    std::string part(parts[i]);
    if (mkdirat(current.get(), part.c_str(), 0755) != 0 && errno != EEXIST) {
      return WriteError(path, "creating directory " + Quote(part));
    }
    UniqueFd next(
        openat(current.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next.valid()) return WriteError(path, "opening directory " + Quote(part));
    current = std::move(next);
  }
  *parent = std::move(current);
  *leaf = std::string(parts.back());
  return Status::Ok();
}

Status RemoveExisting(int parent, const std::string& leaf, const std::string& path) {
  if (unlinkat(parent, leaf.c_str(), 0) != 0 && errno != ENOENT) {
    return WriteError(path, "replacing what is already there");
  }
  return Status::Ok();
}

Status WriteFile(int parent, const std::string& leaf, const ParsedEntry& entry) {
  if (Status s = RemoveExisting(parent, leaf, entry.path); !s.ok()) return s;
  UniqueFd fd(
      openat(parent, leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) return WriteError(entry.path, "creating file");
  std::string_view data = entry.data;
  while (!data.empty()) {
    ssize_t n = write(fd.get(), data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return WriteError(entry.path, "writing");
    data.remove_prefix(static_cast<size_t>(n));
  }
  const timespec times[2] = {{entry.mtime, 0}, {entry.mtime, 0}};
  if (fchmod(fd.get(), entry.mode) != 0) return WriteError(entry.path, "setting mode");
  if (futimens(fd.get(), times) != 0) return WriteError(entry.path, "setting mtime");
  return Status::Ok();
}

Status WriteEntry(int root, const ParsedEntry& entry) {
  UniqueFd parent;
  std::string leaf;
  if (Status s = OpenParent(root, entry.path, &parent, &leaf); !s.ok()) return s;
  switch (entry.type) {
    case kRegular:
      return WriteFile(parent.get(), leaf, entry);
    case kDirectory:
      // Owner-writable until the final pass sets the archive's mode, so that a read-only
      // directory can still be filled.
      if (mkdirat(parent.get(), leaf.c_str(), 0700) != 0 && errno != EEXIST) {
        return WriteError(entry.path, "creating directory");
      }
      return Status::Ok();
    case kSymlink: {
      if (Status s = RemoveExisting(parent.get(), leaf, entry.path); !s.ok()) return s;
      if (symlinkat(entry.linkname.c_str(), parent.get(), leaf.c_str()) != 0) {
        return WriteError(entry.path, "creating symlink");
      }
      const timespec times[2] = {{entry.mtime, 0}, {entry.mtime, 0}};
      if (utimensat(parent.get(), leaf.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
        return WriteError(entry.path, "setting mtime");
      }
      return Status::Ok();
    }
    case kHardLink: {
      UniqueFd target_parent;
      std::string target_leaf;
      if (Status s = OpenParent(root, entry.linkname, &target_parent, &target_leaf); !s.ok()) {
        return s;
      }
      if (Status s = RemoveExisting(parent.get(), leaf, entry.path); !s.ok()) return s;
      if (linkat(target_parent.get(), target_leaf.c_str(), parent.get(), leaf.c_str(), 0) != 0) {
        return WriteError(entry.path, "creating hard link");
      }
      return Status::Ok();
    }
  }
  return Status::Internal("unexpected tar entry type");
}

Status SetDirectoryMetadata(int root, const ParsedEntry& entry) {
  UniqueFd parent;
  std::string leaf;
  if (Status s = OpenParent(root, entry.path, &parent, &leaf); !s.ok()) return s;
  UniqueFd dir(openat(parent.get(), leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir.valid()) return WriteError(entry.path, "opening directory");
  const timespec times[2] = {{entry.mtime, 0}, {entry.mtime, 0}};
  if (fchmod(dir.get(), entry.mode) != 0) return WriteError(entry.path, "setting mode");
  if (futimens(dir.get(), times) != 0) return WriteError(entry.path, "setting mtime");
  return Status::Ok();
}

}  // namespace
}  // namespace tar

Status ExtractTar(std::string_view archive, const std::string& dest_dir,
                  const ExtractLimits& limits) {
  std::vector<tar::ParsedEntry> entries;
  if (Status s = tar::ReadTarEntries(archive, limits, &entries); !s.ok()) return s;

  std::error_code error;
  std::filesystem::create_directories(dest_dir, error);
  if (error) {
    return Status::Internal("cannot create " + tar::Quote(dest_dir) + ": " + error.message());
  }
  tar::UniqueFd root(open(dest_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid())
    return Status::Internal("cannot open " + tar::Quote(dest_dir) + ": " + tar::ErrnoText());

  std::vector<const tar::ParsedEntry*> directories;
  for (const tar::ParsedEntry& entry : entries) {
    if (Status s = tar::WriteEntry(root.get(), entry); !s.ok()) return s;
    if (entry.type == tar::kDirectory) directories.push_back(&entry);
  }
  // Deepest first: a directory's mtime changes when its children are created, and a
  // read-only parent must stay writable until its children are done.
  std::sort(directories.begin(), directories.end(),
            [](const tar::ParsedEntry* a, const tar::ParsedEntry* b) { return a->path > b->path; });
  for (const tar::ParsedEntry* dir : directories) {
    if (Status s = tar::SetDirectoryMetadata(root.get(), *dir); !s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace manifold
