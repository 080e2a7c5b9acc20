// TarExtractor and ExtractTar (tar.h): the entries tar_reader.h checked, written under the
// destination as they arrive, without ever following a symlink already there.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <unordered_set>
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

Status CreateFile(int parent, const std::string& leaf, const ParsedEntry& entry, UniqueFd* fd) {
  if (Status s = RemoveExisting(parent, leaf, entry.path); !s.ok()) return s;
  *fd = UniqueFd(
      openat(parent, leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd->valid()) return WriteError(entry.path, "creating file");
  return Status::Ok();
}

// Creates what the entry is, except a regular file's data, which follows in pieces.
Status WriteEntry(int root, const ParsedEntry& entry, UniqueFd* file) {
  UniqueFd parent;
  std::string leaf;
  if (Status s = OpenParent(root, entry.path, &parent, &leaf); !s.ok()) return s;
  switch (entry.type) {
    case kRegular:
      return CreateFile(parent.get(), leaf, entry, file);
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

// The sink the parser feeds: each entry checked against the earlier ones, then written.
struct TarExtractor::State final : tar::EntrySink {
  State(std::string dest_dir, const ExtractLimits& limits)
      : dest(std::move(dest_dir)), parser(limits, this) {}

  Status Open();
  Status Begin(const tar::ParsedEntry& entry) override;
  Status Data(std::string_view bytes) override;
  Status End() override;
  Status Finish();
  void RemoveExtracted();

  std::string dest;
  tar::EntryParser parser;
  tar::EntryIndex index;
  tar::UniqueFd root;
  bool made_dest = false;
  // Top-level names this extraction created in a dest_dir that existed before it.
  std::unordered_set<std::string> made_top;
  tar::UniqueFd file;  // the regular file whose data is arriving
  const tar::ParsedEntry* current = nullptr;
  bool finished = false;
};

Status TarExtractor::State::Open() {
  struct stat st;
  made_dest = stat(dest.c_str(), &st) != 0;
  std::error_code error;
  std::filesystem::create_directories(dest, error);
  if (error) return Status::Internal("cannot create " + tar::Quote(dest) + ": " + error.message());
  root = tar::UniqueFd(open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) {
    return Status::Internal("cannot open " + tar::Quote(dest) + ": " + tar::ErrnoText());
  }
  return Status::Ok();
}

Status TarExtractor::State::Begin(const tar::ParsedEntry& entry) {
  bool merged = false;
  if (Status s = index.Add(entry, &merged); !s.ok() || merged) return s;
  current = &index.entries().back();
  if (!made_dest) {
    std::string top(tar::SplitPath(entry.path).front());
    struct stat st;
    if (!made_top.contains(top) &&
        fstatat(root.get(), top.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      made_top.insert(top);
    }
  }
  // Links wait for Finish: a symlink is known to stay inside only once all are known.
  if (entry.type == tar::kSymlink || entry.type == tar::kHardLink) return Status::Ok();
  return tar::WriteEntry(root.get(), entry, &file);
}

Status TarExtractor::State::Data(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = write(file.get(), bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return tar::WriteError(current->path, "writing");
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status TarExtractor::State::End() {
  if (!file.valid()) return Status::Ok();
  const timespec times[2] = {{current->mtime, 0}, {current->mtime, 0}};
  if (fchmod(file.get(), current->mode) != 0) return tar::WriteError(current->path, "setting mode");
  if (futimens(file.get(), times) != 0) return tar::WriteError(current->path, "setting mtime");
  file = tar::UniqueFd();
  return Status::Ok();
}

Status TarExtractor::State::Finish() {
  if (Status s = parser.Finish(); !s.ok()) return s;
  if (Status s = index.CheckSymlinks(); !s.ok()) return s;
  tar::UniqueFd unused;
  std::vector<const tar::ParsedEntry*> directories;
  for (const tar::ParsedEntry& entry : index.entries()) {
    if (entry.type == tar::kSymlink || entry.type == tar::kHardLink) {
      if (Status s = tar::WriteEntry(root.get(), entry, &unused); !s.ok()) return s;
    }
    if (entry.type == tar::kDirectory) directories.push_back(&entry);
  }
  // Deepest first: a directory's mtime changes when its children are created, and a
  // read-only parent must stay writable until its children are done.
  std::sort(directories.begin(), directories.end(),
            [](const tar::ParsedEntry* a, const tar::ParsedEntry* b) { return a->path > b->path; });
  for (const tar::ParsedEntry* dir : directories) {
    if (Status s = tar::SetDirectoryMetadata(root.get(), *dir); !s.ok()) return s;
  }
  finished = true;
  return Status::Ok();
}

void TarExtractor::State::RemoveExtracted() {
  file = tar::UniqueFd();
  if (!root.valid()) return;  // nothing was written
  root = tar::UniqueFd();
  std::error_code ignored;  // best effort: there is no one left to tell
  if (made_dest) {
    std::filesystem::remove_all(dest, ignored);
    return;
  }
  for (const std::string& top : made_top) {
    std::filesystem::remove_all(std::filesystem::path(dest) / top, ignored);
  }
}

TarExtractor::TarExtractor(std::string dest_dir, const ExtractLimits& limits)
    : state_(std::make_unique<State>(std::move(dest_dir), limits)) {}

TarExtractor::~TarExtractor() {
  if (!state_->finished) state_->RemoveExtracted();
}

Status TarExtractor::Write(std::string_view bytes) {
  if (!state_->root.valid() && !state_->finished) {
    if (Status s = state_->Open(); !s.ok()) return s;
  }
  return state_->parser.Feed(bytes);
}

Status TarExtractor::Finish() { return state_->Finish(); }

Status ExtractTar(std::string_view archive, const std::string& dest_dir,
                  const ExtractLimits& limits) {
  TarExtractor extractor(dest_dir, limits);
  if (Status s = extractor.Write(archive); !s.ok()) return s;
  return extractor.Finish();
}

}  // namespace manifold
