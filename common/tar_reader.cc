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

// Parses every header, applying extended headers, into `entries`; checks structure,
// entry types, paths and limits, but not how entries relate to each other.
Status ParseArchive(std::string_view archive, const ExtractLimits& limits,
                    std::vector<ParsedEntry>* entries) {
  uint64_t total_bytes = 0;
  Overrides pending;
  size_t offset = 0;
  while (true) {
    if (archive.size() - offset < kBlockSize) {
      return Status::InvalidArgument("tar archive is truncated: it ends at byte " +
                                     std::to_string(archive.size()) +
                                     (offset == archive.size() ? " without an end-of-archive marker"
                                                               : " in the middle of a header"));
    }
    const char* header = archive.data() + offset;
    if (std::all_of(header, header + kBlockSize, [](char c) { return c == '\0'; })) {
      if (pending.any()) {
        return Status::InvalidArgument(
            "tar archive ends with an extended header that "
            "describes no entry");
      }
      return Status::Ok();
    }

    std::string name(FieldString(header, kName));
    // Only POSIX ustar has a prefix field; GNU's "ustar  " keeps other data there.
    if (std::string_view(header + kMagic.offset, kMagic.size) == kPosixMagic) {
      std::string_view prefix = FieldString(header, kPrefix);
      if (!prefix.empty()) name = std::string(prefix) + "/" + name;
    }
    std::string where = "header at byte " + std::to_string(offset) + " (" + Quote(name) + ")";

    std::optional<int64_t> checksum = ParseNumericField(header, kChecksum);
    auto [unsigned_sum, signed_sum] = HeaderChecksums(header);
    if (!checksum || (*checksum != unsigned_sum && *checksum != signed_sum)) {
      const char* compression = offset == 0 ? CompressionOf(archive) : nullptr;
      if (compression != nullptr) {
        return Status::InvalidArgument(std::string("the archive is ") + compression +
                                       "-compressed; a build context must be an uncompressed "
                                       "tar archive (as manifold build sends it)");
      }
      return Status::InvalidArgument("tar " + where +
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
      return Status::InvalidArgument("tar " + where + ": the size field is malformed");
    }
    uint64_t size = static_cast<uint64_t>(*header_size);
    if (!metadata && pending.size) size = *pending.size;
    if (header_only) size = 0;  // links, directories and devices carry no data
    if (metadata && size > kMaxMetadataSize) {
      return Status::InvalidArgument("tar " + where + ": extended header of " +
                                     std::to_string(size) + " bytes exceeds 1 MiB");
    }
    const uint64_t available = archive.size() - offset - kBlockSize;
    if (size > available || RoundUpToBlock(size) > available) {
      return Status::InvalidArgument("tar " + where + ": the archive is truncated inside " +
                                     std::to_string(size) + " bytes of data");
    }
    std::string_view data = archive.substr(offset + kBlockSize, size);
    offset += kBlockSize + RoundUpToBlock(size);

    switch (type) {
      case 'x':
        if (Status s = ParsePaxRecords(data, &pending); !s.ok())
          return s.WithContext("tar " + where);
        continue;
      case 'g':
        continue;  // global defaults (often just a commit id) do not change what we write
      case 'L':
        pending.path = std::string(data.substr(0, data.find('\0')));
        continue;
      case 'K':
        pending.linkpath = std::string(data.substr(0, data.find('\0')));
        continue;
      case kRegular:
      case kDirectory:
      case kSymlink:
      case kHardLink:
        break;
      case '3':
      case '4':
      case '6':
        return Status::InvalidArgument("tar entry " + Quote(pending.path.value_or(name)) +
                                       ": device and fifo entries are not allowed");
      default:
        return Status::InvalidArgument("tar entry " + Quote(pending.path.value_or(name)) +
                                       ": unsupported entry type '" + std::string(1, type) + "'");
    }

    ParsedEntry entry;
    std::string raw_name = pending.path.value_or(name);
    std::string raw_link = pending.linkpath.value_or(std::string(FieldString(header, kLinkname)));
    std::optional<int64_t> mode = ParseNumericField(header, kMode);
    std::optional<int64_t> mtime =
        pending.mtime ? pending.mtime : ParseNumericField(header, kMtime);
    pending = Overrides();
    if (!mode || !mtime) {
      return Status::InvalidArgument("tar entry " + Quote(raw_name) +
                                     ": the mode or mtime field is malformed");
    }
    if (entries->size() >= limits.max_entries) {
      return Status::InvalidArgument("tar archive has more than " +
                                     std::to_string(limits.max_entries) + " entries");
    }
    if (type == kRegular) {
      total_bytes += size;
      if (total_bytes > limits.max_total_bytes) {
        return Status::InvalidArgument("tar entry " + Quote(raw_name) +
                                       ": files in the archive exceed the limit of " +
                                       std::to_string(limits.max_total_bytes) + " bytes");
      }
    }
    Result<std::string> path = NormalizeArchivePath(raw_name);
    if (!path.ok()) return EntryError(raw_name, path.status());
    if (path->empty()) {
      if (type == kDirectory) continue;  // "./": the destination itself
      return EntryError(raw_name, Status::InvalidArgument("the entry names the destination "
                                                          "directory itself"));
    }
    entry.path = std::move(path).value();
    entry.type = type;
    entry.mode = static_cast<uint32_t>(*mode) & 0777;
    entry.mtime = *mtime;
    entry.data = data;
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
    entries->push_back(std::move(entry));
  }
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

// Checks how entries relate: duplicates, parents that are not directories, symlink
// escapes and hard-link targets. Merges repeated directory entries (the last one's mode
// and mtime win).
Status ValidateEntries(std::vector<ParsedEntry>* entries) {
  PathIndex index;
  std::vector<ParsedEntry> unique;
  unique.reserve(entries->size());
  for (ParsedEntry& entry : *entries) {
    auto [it, inserted] = index.emplace(entry.path, unique.size());
    if (!inserted) {
      ParsedEntry& earlier = unique[it->second];
      if (earlier.type != kDirectory || entry.type != kDirectory) {
        return EntryError(entry.path, Status::InvalidArgument("the path appears more than "
                                                              "once in the archive"));
      }
      earlier.mode = entry.mode;
      earlier.mtime = entry.mtime;
      continue;
    }
    unique.push_back(std::move(entry));
  }
  *entries = std::move(unique);

  for (size_t i = 0; i < entries->size(); ++i) {
    const ParsedEntry& entry = (*entries)[i];
    std::vector<std::string_view> parts = SplitPath(entry.path);
    for (size_t depth = 1; depth < parts.size(); ++depth) {
      std::string ancestor = JoinPath(parts, depth);
      auto it = index.find(ancestor);
      if (it == index.end() || (*entries)[it->second].type == kDirectory) continue;
      return EntryError(entry.path, Status::InvalidArgument(
                                        "it lies beneath " + Quote(ancestor) + ", which is " +
                                        ((*entries)[it->second].type == kSymlink
                                             ? "a symlink and could lead outside the destination"
                                             : "not a directory")));
    }
    if (entry.type == kSymlink) {
      Status s = CheckSymlinkStaysInside(*entries, index, entry.path, entry.linkname);
      if (!s.ok()) return EntryError(entry.path, s);
    } else if (entry.type == kHardLink) {
      auto it = index.find(entry.linkname);
      bool ok =
          it != index.end() && it->second < i &&
          ((*entries)[it->second].type == kRegular || (*entries)[it->second].type == kHardLink);
      if (!ok) {
        return EntryError(entry.path,
                          Status::InvalidArgument("hard link to " + Quote(entry.linkname) +
                                                  ", which is not a regular file earlier in "
                                                  "the archive"));
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Status ReadTarEntries(std::string_view archive, const ExtractLimits& limits,
                      std::vector<ParsedEntry>* entries) {
  if (Status s = ParseArchive(archive, limits, entries); !s.ok()) return s;
  return ValidateEntries(entries);
}

}  // namespace manifold::tar
