#include "common/tar_reader.h"

#include <algorithm>
#include <deque>
#include <optional>
#include <unordered_map>
#include <utility>

namespace manifold::tar {
namespace {

// Normalises a path stored in the archive, rejecting what could escape the destination.
Result<std::string> NormalizeArchivePath(std::string_view raw) {
  if (raw.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("the path contains a NUL byte");
  }
  if (!raw.empty() && raw.front() == '/') {
    return Status::InvalidArgument("absolute paths are not allowed");
  }
  std::vector<std::string_view> parts = SplitPath(raw);
  for (std::string_view part : parts) {
    if (part == "..") return Status::InvalidArgument("paths may not contain a \"..\" component");
    if (part.size() > kMaxComponent) {
      return Status::InvalidArgument("a path component is longer than 255 bytes");
    }
  }
  return JoinPath(parts, parts.size());
}

Status EntryError(std::string_view name, const Status& reason) {
  return reason.WithContext("tar entry " + Quote(name));
}

// The compression an archive that is not a tar is wrapped in, judged by its magic bytes,
// or nullptr. The extractor never decompresses, so no small upload can expand into a tar
// bomb; naming the format makes the refusal clearer than a checksum mismatch.
const char* CompressionOf(std::string_view archive) {
  static const struct {
    std::string_view magic;
    const char* name;
  } kFormats[] = {{"\x1f\x8b", "gzip"},
                  {"\xfd"
                   "7zXZ",
                   "xz"},
                  {"\x28\xb5\x2f\xfd", "zstd"}};
  for (const auto& format : kFormats) {
    if (archive.starts_with(format.magic)) return format.name;
  }
  return nullptr;
}

using PathIndex = std::unordered_map<std::string, size_t>;

// Follows `target` from the directory holding `link_path` through the archive's own
// symlinks, failing if it ever steps above the destination.
Status CheckSymlinkStaysInside(const std::vector<ParsedEntry>& entries, const PathIndex& index,
                               const std::string& link_path, const std::string& target) {
  auto outside = [&] {
    return Status::InvalidArgument("symlink target " + Quote(target) +
                                   " leads outside the destination directory");
  };
  std::vector<std::string_view> resolved = SplitPath(link_path);
  resolved.pop_back();
  std::deque<std::string_view> pending;
  auto push_target = [&](std::string_view text) -> bool {
    if (!text.empty() && text.front() == '/') return false;
    std::vector<std::string_view> parts = SplitPath(text);
    pending.insert(pending.begin(), parts.begin(), parts.end());
    return true;
  };
  if (!push_target(target)) return outside();
  int hops = 0;
  while (!pending.empty()) {
    std::string_view part = pending.front();
    pending.pop_front();
    if (part == "..") {
      if (resolved.empty()) return outside();
      resolved.pop_back();
      continue;
    }
    resolved.push_back(part);
    auto it = index.find(JoinPath(resolved, resolved.size()));
    if (it == index.end() || entries[it->second].type != kSymlink) continue;
    if (++hops > kMaxSymlinkHops) {
      return Status::InvalidArgument("symlink target " + Quote(target) +
                                     " goes through too many symlinks (a loop?)");
    }
    resolved.pop_back();
    if (!push_target(entries[it->second].linkname)) return outside();
  }
  return Status::Ok();
}

}  // namespace

EntryParser::EntryParser(const ExtractLimits& limits, EntrySink* sink)
    : limits_(limits), sink_(sink) {
  block_.reserve(kBlockSize);
}

Status EntryParser::Fail(Status status) {
  failed_ = std::move(status);
  return failed_;
}

Status EntryParser::Feed(std::string_view bytes) {
  if (!failed_.ok()) return failed_;
  while (!bytes.empty()) {
    if (state_ == State::kEnd) return Status::Ok();  // what follows the marker is not read
    size_t take = bytes.size();
    if (state_ == State::kHeader) take = std::min<size_t>(take, kBlockSize - block_.size());
    if (state_ != State::kHeader) take = static_cast<size_t>(std::min<uint64_t>(take, remaining_));
    std::string_view piece = bytes.substr(0, take);
    bytes.remove_prefix(take);
    offset_ += take;
    Status status = Status::Ok();
    switch (state_) {
      case State::kHeader:
        block_.append(piece);
        if (block_.size() == kBlockSize) status = OnHeader();
        break;
      case State::kMetadata:
        block_.append(piece);
        remaining_ -= take;
        if (remaining_ == 0) status = OnMetadata();
        break;
      case State::kData:
        status = sink_->Data(piece);
        remaining_ -= take;
        if (status.ok() && remaining_ == 0) {
          status = sink_->End();
          remaining_ = padding_;
          state_ = padding_ > 0 ? State::kPadding : State::kHeader;
        }
        break;
      case State::kPadding:
        remaining_ -= take;
        if (remaining_ == 0) state_ = State::kHeader;
        break;
      case State::kEnd:
        break;
    }
    if (!status.ok()) return Fail(std::move(status));
  }
  return Status::Ok();
}

Status EntryParser::Finish() const {
  if (!failed_.ok()) return failed_;
  switch (state_) {
    case State::kEnd:
      return Status::Ok();
    case State::kHeader:
      return Status::InvalidArgument(
          "tar archive is truncated: it ends at byte " + std::to_string(offset_) +
          (block_.empty() ? " without an end-of-archive marker" : " in the middle of a header"));
    default:
      return Status::InvalidArgument("tar " + where_ + ": the archive is truncated inside " +
                                     std::to_string(data_size_) + " bytes of data");
  }
}

// One whole header in block_: an extended header to read next, an entry to hand on, or
// the end of the archive.
Status EntryParser::OnHeader() {
  const char* header = block_.data();
  const uint64_t header_offset = offset_ - kBlockSize;
  if (std::all_of(header, header + kBlockSize, [](char c) { return c == '\0'; })) {
    if (pending_.any()) {
      return Status::InvalidArgument(
          "tar archive ends with an extended header that "
          "describes no entry");
    }
    state_ = State::kEnd;
    return Status::Ok();
  }

  std::string name(FieldString(header, kName));
  // Only POSIX ustar has a prefix field; GNU's "ustar  " keeps other data there.
  if (std::string_view(header + kMagic.offset, kMagic.size) == kPosixMagic) {
    std::string_view prefix = FieldString(header, kPrefix);
    if (!prefix.empty()) name = std::string(prefix) + "/" + name;
  }
  where_ = "header at byte " + std::to_string(header_offset) + " (" + Quote(name) + ")";

  std::optional<int64_t> checksum = ParseNumericField(header, kChecksum);
  auto [unsigned_sum, signed_sum] = HeaderChecksums(header);
  if (!checksum || (*checksum != unsigned_sum && *checksum != signed_sum)) {
    const char* compression = header_offset == 0 ? CompressionOf(block_) : nullptr;
    if (compression != nullptr) {
      return Status::InvalidArgument(std::string("the archive is ") + compression +
                                     "-compressed; a build context must be an uncompressed "
                                     "tar archive (as manifold build sends it)");
    }
    return Status::InvalidArgument("tar " + where_ +
                                   ": checksum mismatch; the archive is corrupt or not a "
                                   "tar archive");
  }

  char type = header[kTypeOffset];
  if (type == '\0' || type == '7') type = kRegular;
  if (type == kRegular && name.ends_with('/')) type = kDirectory;  // pre-POSIX directories
  const bool metadata = type == 'x' || type == 'g' || type == 'L' || type == 'K';
  const bool header_only = type != kRegular && !metadata;

  std::optional<int64_t> header_size = ParseNumericField(header, kSize);
  if (!header_size || *header_size < 0) {
    return Status::InvalidArgument("tar " + where_ + ": the size field is malformed");
  }
  uint64_t size = static_cast<uint64_t>(*header_size);
  if (!metadata && pending_.size) size = *pending_.size;
  if (header_only) size = 0;  // links, directories and devices carry no data
  if (metadata && size > kMaxMetadataSize) {
    return Status::InvalidArgument("tar " + where_ + ": extended header of " +
                                   std::to_string(size) + " bytes exceeds 1 MiB");
  }
  data_size_ = size;
  padding_ = RoundUpToBlock(size) - size;
  if (metadata) {
    metadata_type_ = type;
    block_.clear();
    remaining_ = size;
    state_ = State::kMetadata;
    return size == 0 ? OnMetadata() : Status::Ok();
  }

  switch (type) {
    case kRegular:
    case kDirectory:
    case kSymlink:
    case kHardLink:
      break;
    case '3':
    case '4':
    case '6':
      return Status::InvalidArgument("tar entry " + Quote(pending_.path.value_or(name)) +
                                     ": device and fifo entries are not allowed");
    default:
      return Status::InvalidArgument("tar entry " + Quote(pending_.path.value_or(name)) +
                                     ": unsupported entry type '" + std::string(1, type) + "'");
  }

  ParsedEntry entry;
  std::string raw_name = pending_.path.value_or(name);
  std::string raw_link = pending_.linkpath.value_or(std::string(FieldString(header, kLinkname)));
  std::optional<int64_t> mode = ParseNumericField(header, kMode);
  std::optional<int64_t> mtime =
      pending_.mtime ? pending_.mtime : ParseNumericField(header, kMtime);
  pending_ = Overrides();
  block_.clear();
  if (!mode || !mtime) {
    return Status::InvalidArgument("tar entry " + Quote(raw_name) +
                                   ": the mode or mtime field is malformed");
  }
  if (entries_ >= limits_.max_entries) {
    return Status::InvalidArgument("tar archive has more than " +
                                   std::to_string(limits_.max_entries) + " entries");
  }
  if (type == kRegular) {
    total_bytes_ += size;
    if (total_bytes_ > limits_.max_total_bytes) {
      return Status::InvalidArgument("tar entry " + Quote(raw_name) +
                                     ": files in the archive exceed the limit of " +
                                     std::to_string(limits_.max_total_bytes) + " bytes");
    }
  }
  Result<std::string> path = NormalizeArchivePath(raw_name);
  if (!path.ok()) return EntryError(raw_name, path.status());
  if (path->empty() && type != kDirectory) {
    return EntryError(raw_name, Status::InvalidArgument("the entry names the destination "
                                                        "directory itself"));
  }
  entry.path = std::move(path).value();
  entry.type = type;
  entry.mode = static_cast<uint32_t>(*mode) & 0777;
  entry.mtime = *mtime;
  entry.size = size;
  if (type == kSymlink) {
    if (raw_link.empty()) {
      return EntryError(raw_name, Status::InvalidArgument("the symlink has an empty target"));
    }
    if (raw_link.size() > kMaxLinkTarget || raw_link.find('\0') != std::string::npos) {
      return EntryError(raw_name, Status::InvalidArgument("the symlink target is longer "
                                                          "than 4095 bytes or has a NUL"));
    }
    entry.linkname = std::move(raw_link);
  } else if (type == kHardLink) {
    Result<std::string> target = NormalizeArchivePath(raw_link);
    if (!target.ok()) {
      return EntryError(raw_name,
                        target.status().WithContext("hard link target " + Quote(raw_link)));
    }
    entry.linkname = std::move(target).value();
  }

  state_ = State::kHeader;
  if (entry.path.empty()) return Status::Ok();  // "./": the destination itself
  ++entries_;
  if (Status s = sink_->Begin(entry); !s.ok()) return s;
  if (size > 0) {
    remaining_ = size;
    state_ = State::kData;
    return Status::Ok();
  }
  return sink_->End();
}

// An extended header's data, whole in block_, applied to the next entry.
Status EntryParser::OnMetadata() {
  switch (metadata_type_) {
    case 'x':
      if (Status s = ParsePaxRecords(block_, &pending_); !s.ok()) {
        return s.WithContext("tar " + where_);
      }
      break;
    case 'L':
      pending_.path = block_.substr(0, block_.find('\0'));
      break;
    case 'K':
      pending_.linkpath = block_.substr(0, block_.find('\0'));
      break;
    default:
      break;  // 'g': global defaults (often just a commit id) do not change what we write
  }
  block_.clear();
  remaining_ = padding_;
  state_ = padding_ > 0 ? State::kPadding : State::kHeader;
  return Status::Ok();
}

Status EntryIndex::Add(const ParsedEntry& entry, bool* merged) {
  *merged = false;
  if (auto it = index_.find(entry.path); it != index_.end()) {
    ParsedEntry& earlier = entries_[it->second];
    if (earlier.type != kDirectory || entry.type != kDirectory) {
      return EntryError(entry.path, Status::InvalidArgument("the path appears more than "
                                                            "once in the archive"));
    }
    earlier.mode = entry.mode;
    earlier.mtime = entry.mtime;
    *merged = true;
    return Status::Ok();
  }
  auto beneath = [&](const std::string& path, const std::string& ancestor, char type) {
    return EntryError(
        path, Status::InvalidArgument("it lies beneath " + Quote(ancestor) + ", which is " +
                                      (type == kSymlink
                                           ? "a symlink and could lead outside the destination"
                                           : "not a directory")));
  };
  if (entry.type != kDirectory) {
    if (auto it = ancestors_.find(entry.path); it != ancestors_.end()) {
      return beneath(it->second, entry.path, entry.type);
    }
  }
  std::vector<std::string_view> parts = SplitPath(entry.path);
  for (size_t depth = 1; depth < parts.size(); ++depth) {
    std::string ancestor = JoinPath(parts, depth);
    if (auto it = index_.find(ancestor);
        it != index_.end() && entries_[it->second].type != kDirectory) {
      return beneath(entry.path, ancestor, entries_[it->second].type);
    }
    ancestors_.emplace(std::move(ancestor), entry.path);
  }
  if (entry.type == kHardLink) {
    auto it = index_.find(entry.linkname);
    if (it == index_.end() ||
        (entries_[it->second].type != kRegular && entries_[it->second].type != kHardLink)) {
      return EntryError(entry.path,
                        Status::InvalidArgument("hard link to " + Quote(entry.linkname) +
                                                ", which is not a regular file earlier in "
                                                "the archive"));
    }
  }
  index_.emplace(entry.path, entries_.size());
  entries_.push_back(entry);
  return Status::Ok();
}

Status EntryIndex::CheckSymlinks() const {
  for (const ParsedEntry& entry : entries_) {
    if (entry.type != kSymlink) continue;
    Status s = CheckSymlinkStaysInside(entries_, index_, entry.path, entry.linkname);
    if (!s.ok()) return EntryError(entry.path, s);
  }
  return Status::Ok();
}

}  // namespace manifold::tar
