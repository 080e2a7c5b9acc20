// Tar reader: an archive that arrives in pieces, parsed and checked entry by entry, for
// the extractor of tar.h; internal to the tar files.
//
// Reading treats every archive as hostile. EntryParser checks each header's checksum,
// type, size and path, applies extended headers and enforces the limits before it hands
// an entry on, so no data is written for an entry that is wrong in itself. EntryIndex
// checks how entries relate as they arrive (duplicates, entries beneath symlinks or
// files, hard links to anything but an earlier regular file) and, once the archive is
// whole, whether any symlink leads outside the destination, which only the complete set
// of symlinks can tell. Neither is thread-safe; use each from one thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
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
  std::string linkname;  // symlink: target as stored; hard link: normalised archive path
  uint64_t size = 0;     // bytes of data that follow (regular files only)
};

// What EntryParser hands each entry to: Begin, then its data in pieces (regular files
// only, `size` bytes in all), then End. An error from any of them stops the parse.
class EntrySink {
 public:
  virtual ~EntrySink() = default;
  virtual Status Begin(const ParsedEntry& entry) = 0;
  virtual Status Data(std::string_view bytes) = 0;
  virtual Status End() = 0;
};

// Parses an archive fed in pieces of any size. After the first error every Feed returns
// it again. The metadata it buffers is bounded (a header, an extended header of at most
// 1 MiB); file data passes straight through to the sink.
class EntryParser {
 public:
  EntryParser(const ExtractLimits& limits, EntrySink* sink);

  Status Feed(std::string_view bytes);
  // Ok only if the archive ended with its end-of-archive marker.
  Status Finish() const;

 private:
  enum class State { kHeader, kMetadata, kData, kPadding, kEnd };

  Status Fail(Status status);
  Status OnHeader();
  Status OnMetadata();

  ExtractLimits limits_;
  EntrySink* sink_;
  Status failed_ = Status::Ok();
  State state_ = State::kHeader;
  uint64_t offset_ = 0;     // bytes consumed
  std::string block_;       // the header being read, or an extended header's data
  char metadata_type_ = 0;  // of the extended header being read
  uint64_t remaining_ = 0;  // bytes left of the current data or padding
  uint64_t padding_ = 0;    // padding after the current data
  uint64_t data_size_ = 0;  // of the current entry, for messages
  std::string where_;       // "header at byte N ("name")", for messages
  Overrides pending_;
  uint64_t total_bytes_ = 0;
  uint64_t entries_ = 0;
};

// The entries of one archive in archive order, a repeated directory merged into its first
// entry (the last one's mode and mtime win). Add checks an entry against those before it;
// CheckSymlinks checks every symlink once all have been added. InvalidArgument names the
// entry and the reason.
class EntryIndex {
 public:
  // *merged is set when `entry` repeats a directory already added.
  Status Add(const ParsedEntry& entry, bool* merged);
  Status CheckSymlinks() const;
  const std::vector<ParsedEntry>& entries() const { return entries_; }

 private:
  std::vector<ParsedEntry> entries_;
  std::unordered_map<std::string, size_t> index_;  // path -> position in entries_
  // Every ancestor of an added path -> the first path beneath it, so that a file or
  // symlink named like a directory already used is refused whichever comes first.
  std::unordered_map<std::string, std::string> ancestors_;
};

}  // namespace manifold::tar
