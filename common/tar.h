// Tar: build contexts travel between client, coordinator and agents as uncompressed
// POSIX tar archives held in memory.
//
// The writer is deterministic (sorted entries, no owners, no host-specific fields) so that
// the same directory always yields the same bytes and so the same context digest, which
// lets a client skip uploading a context the coordinator already has. The reader treats
// every archive as hostile: it validates the whole archive before writing anything and
// never creates a file outside the destination, whatever paths, symlinks or hard links
// the archive holds. Both functions are stateless and safe to call from many threads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace manifold {

// Appends a tar archive of everything under `dir` (not `dir` itself) to `*archive`.
// Entries are sorted by relative path, so a directory precedes its contents; uid and gid
// are 0 and user/group names empty; permission bits and mtime (seconds) are kept.
// Regular files, directories and symlinks (target stored verbatim) are archived; a
// socket, fifo or device gives InvalidArgument naming it. Names and link targets that do
// not fit a ustar header go into a PAX extended header.
// `exclude(relative_path, is_dir)`, if set, drops an entry; an excluded directory is
// skipped with everything in it. relative_path uses '/' and has no trailing slash.
Status WriteTarFromDirectory(
    const std::string& dir,
    const std::function<bool(const std::string& relative_path, bool is_dir)>& exclude,
    std::string* archive);

// Bounds on what ExtractTar accepts, so an archive cannot fill a disk or exhaust inodes.
struct ExtractLimits {
  uint64_t max_total_bytes = 8ull << 30;  // sum of regular-file sizes
  uint64_t max_entries = 1'000'000;       // files, directories, symlinks and hard links
};

// Extracts `archive` into `dest_dir` (created if missing). The whole archive is validated
// first and nothing is written if any of it is wrong: absolute paths, ".." components,
// symlinks that are absolute or lead outside dest_dir (following the archive's own
// symlinks), entries beneath a symlink, hard links to anything but an earlier regular
// file, devices and fifos, duplicate paths, bad checksums, truncation, and exceeded
// limits are all InvalidArgument with the entry and the reason; so is a compressed
// archive (gzip, xz, zstd, named as such): nothing is ever decompressed, so file data is
// bounded by the archive's own size. Understands ustar, PAX ('x' path/linkpath/size/mtime;
// 'g' ignored) and GNU long names ('L', 'K'). Modes are restored masked with 0777, and
// mtimes. Writes never follow a symlink already present
// in dest_dir. An I/O failure while writing can leave a partial tree behind.
Status ExtractTar(std::string_view archive, const std::string& dest_dir,
                  const ExtractLimits& limits);

}  // namespace manifold
