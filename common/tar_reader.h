// Tar reader: an archive in memory, parsed and checked whole, as the entries ExtractTar
// (tar.h) then writes; internal to the tar files.
//
// Reading treats every archive as hostile: each header's checksum, type, size and path
// is checked, extended headers applied, limits enforced, and then how the entries relate
// (duplicates, entries beneath symlinks or files, symlinks leading outside the
// destination, hard links to anything but an earlier regular file), so that the
// extractor writes only what can be written safely. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/tar.h"
#include "common/tar_format.h"

namespace manifold::tar {

struct ParsedEntry {
  std::string path;      // normalised: no leading "/", no "." or empty components
  char type = kRegular;  // kRegular, kDirectory, kSymlink or kHardLink
  uint32_t mode = 0;
  int64_t mtime = 0;
  std::string linkname;   // symlink: target as stored; hard link: normalised archive path
  std::string_view data;  // points into the archive
};

// Parses every header of `archive` into `entries` in archive order, a repeated directory
// merged into its first entry (the last one's mode and mtime win), and checks them all
// as ExtractTar describes; InvalidArgument names the entry and the reason.
Status ReadTarEntries(std::string_view archive, const ExtractLimits& limits,
                      std::vector<ParsedEntry>* entries);

}  // namespace manifold::tar
