// Tar: build contexts travel between client, coordinator and agents as uncompressed
// POSIX tar archives, written and read as streams so that no side holds a whole context.
//
// The writer is deterministic (sorted entries, no owners, no host-specific fields) so that
// the same directory always yields the same bytes and so the same context digest, which
// lets a client skip uploading a context the coordinator already has. The reader treats
// every archive as hostile: it checks each entry before writing it, never creates a file
// outside the destination, whatever paths, symlinks or hard links the archive holds, and
// removes everything it extracted when any of the archive turns out wrong. The free
// functions are stateless and safe to call from many threads; a TarExtractor is used
// from one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace manifold {

// Receives an archive in pieces as it is written; an error stops the writer.
using TarSink = std::function<Status(std::string_view bytes)>;

// Writes a tar archive of everything under `dir` (not `dir` itself) to `sink`, reading
// each file in pieces of at most 1 MiB, so memory does not grow with the files' sizes.
// Entries are sorted by relative path, so a directory precedes its contents; uid and gid
// are 0 and user/group names empty; permission bits and mtime (seconds) are kept.
// Regular files, directories and symlinks (target stored verbatim) are archived; a
// socket, fifo or device gives InvalidArgument naming it. Names and link targets that do
// not fit a ustar header go into a PAX extended header.
// `exclude(relative_path, is_dir)`, if set, drops an entry; an excluded directory is
// skipped with everything in it. relative_path uses '/' and has no trailing slash.
Status WriteTar(const std::string& dir,
                const std::function<bool(const std::string& relative_path, bool is_dir)>& exclude,
                const TarSink& sink);

// WriteTar appended to `*archive`, which is left as it was on failure.
Status WriteTarFromDirectory(
    const std::string& dir,
    const std::function<bool(const std::string& relative_path, bool is_dir)>& exclude,
    std::string* archive);

// Bounds on what ExtractTar accepts, so an archive cannot fill a disk or exhaust inodes.
struct ExtractLimits {
  uint64_t max_total_bytes = 8ull << 30;  // sum of regular-file sizes
  uint64_t max_entries = 1'000'000;       // files, directories, symlinks and hard links
};

// Extracts an archive fed in pieces into `dest_dir` (created if missing), writing file
// data as it arrives. Each entry is checked before anything of it is written, and the
// archive as a whole at Finish; anything wrong is InvalidArgument with the entry and the
// reason: absolute paths, ".." components, symlinks that are absolute or lead outside
// dest_dir (following the archive's own symlinks), entries beneath a symlink, hard links
// to anything but an earlier regular file, devices and fifos, duplicate paths, bad
// checksums, truncation, and exceeded limits; so is a compressed archive (gzip, xz, zstd,
// named as such): nothing is ever decompressed, so file data is bounded by the archive's
// own size. Understands ustar, PAX ('x' path/linkpath/size/mtime; 'g' ignored) and GNU
// long names ('L', 'K'). Modes are restored masked with 0777, and mtimes. Symlinks and
// hard links are made only at Finish, once every symlink is known to stay inside, so no
// write can pass through one; writes never follow a symlink already present in dest_dir.
//
// Unless Finish succeeds, destroying the extractor removes what it extracted (dest_dir
// itself if it made it), whether the archive was wrong, a write failed, or the caller
// gave up on it (say, because the stream's digest did not match).
class TarExtractor {
 public:
  TarExtractor(std::string dest_dir, const ExtractLimits& limits);
  ~TarExtractor();
  TarExtractor(const TarExtractor&) = delete;
  TarExtractor& operator=(const TarExtractor&) = delete;

  // The next piece of the archive. After an error, every call returns that error.
  Status Write(std::string_view bytes);
  // The archive is complete: checks it ended properly and its symlinks, makes the links
  // and sets directories' modes and mtimes.
  Status Finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// An archive held in memory, through a TarExtractor: on failure nothing is left behind.
Status ExtractTar(std::string_view archive, const std::string& dest_dir,
                  const ExtractLimits& limits);

}  // namespace manifold
