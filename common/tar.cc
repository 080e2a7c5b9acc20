#include "common/tar.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace manifold {
namespace {

constexpr size_t kBlockSize = 512;

// Offsets and widths of the ustar header fields (POSIX.1-1988).
struct Field {
  size_t offset;
  size_t size;
};
constexpr Field kName{0, 100};
constexpr Field kMode{100, 8};
constexpr Field kUid{108, 8};
constexpr Field kGid{116, 8};
constexpr Field kSize{124, 12};
constexpr Field kMtime{136, 12};
constexpr Field kChecksum{148, 8};
constexpr size_t kTypeOffset = 156;
constexpr Field kLinkname{157, 100};
constexpr Field kMagic{257, 6};
constexpr Field kVersion{263, 2};
constexpr Field kDevMajor{329, 8};
constexpr Field kDevMinor{337, 8};
constexpr Field kPrefix{345, 155};

constexpr std::string_view kPosixMagic{"ustar\0", 6};
// The largest value an 11-digit octal field (size, mtime) can hold.
constexpr uint64_t kMaxOctal11 = (uint64_t{1} << 33) - 1;
// Linux limits: a longer component or symlink target cannot be created, so such an
// archive is rejected during validation rather than failing half-way through writing.
constexpr size_t kMaxComponent = 255;
constexpr size_t kMaxLinkTarget = 4095;
// Extended headers and GNU long names are metadata; anything larger is an attack.
constexpr uint64_t kMaxMetadataSize = 1 << 20;
constexpr int kMaxSymlinkHops = 40;  // what Linux allows before ELOOP

constexpr char kRegular = '0';
constexpr char kHardLink = '1';
constexpr char kSymlink = '2';
constexpr char kDirectory = '5';

std::string Quote(std::string_view text) { return "\"" + std::string(text) + "\""; }
std::string ErrnoText() { return std::strerror(errno); }

uint64_t RoundUpToBlock(uint64_t size) { return (size + kBlockSize - 1) / kBlockSize * kBlockSize; }

// Sums the header bytes with the checksum field read as spaces, both as unsigned and as
// signed chars, because some historical writers used signed sums.
std::pair<int64_t, int64_t> HeaderChecksums(const char* header) {
  int64_t unsigned_sum = 0;
  int64_t signed_sum = 0;
  for (size_t i = 0; i < kBlockSize; ++i) {
    bool in_field = i >= kChecksum.offset && i < kChecksum.offset + kChecksum.size;
    char c = in_field ? ' ' : header[i];
    unsigned_sum += static_cast<unsigned char>(c);
    signed_sum += static_cast<signed char>(c);
  }
  return {unsigned_sum, signed_sum};
}

class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) close(fd_);
  }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_;
};

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  while (!path.empty()) {
    size_t slash = path.find('/');
    std::string_view part = path.substr(0, slash);
    if (!part.empty() && part != ".") parts.push_back(part);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return parts;
}

std::string JoinPath(const std::vector<std::string_view>& parts, size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) out += '/';
    out += parts[i];
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Writing

struct HeaderSpec {
  std::string path;  // directories end in '/'
  std::string linkname;
  char type = kRegular;
  uint32_t mode = 0;
  int64_t mtime = 0;
  uint64_t size = 0;
};

void PutString(char* header, Field field, std::string_view value) {
  if (value.empty()) return;  // memcpy from an empty view's null data() is undefined
  std::memcpy(header + field.offset, value.data(), std::min(value.size(), field.size));
}

// Zero-padded octal with a trailing NUL, the form GNU tar and Go write.
void PutOctal(char* header, Field field, uint64_t value) {
  char* out = header + field.offset;
  size_t digits = field.size - 1;
  for (size_t i = digits; i-- > 0;) {
    out[i] = static_cast<char>('0' + (value & 7));
    value >>= 3;
  }
  out[digits] = '\0';
}

// Splits a path into ustar prefix and name (prefix + "/" + name), preferring the shortest
// prefix; false when no split fits.
bool SplitUstarPath(std::string_view path, std::string_view* prefix, std::string_view* name) {
  if (path.size() <= kName.size) {
    *prefix = {};
    *name = path;
    return true;
  }
  for (size_t slash = path.find('/'); slash != std::string_view::npos;
       slash = path.find('/', slash + 1)) {
    if (slash > kPrefix.size) return false;
    std::string_view rest = path.substr(slash + 1);
    if (slash > 0 && !rest.empty() && rest.size() <= kName.size) {
      *prefix = path.substr(0, slash);
      *name = rest;
      return true;
    }
  }
  return false;
}

// A PAX record is "<length> <key>=<value>\n", where length counts the whole record.
void AppendPaxRecord(std::string* records, std::string_view key, std::string_view value) {
  size_t body = 1 + key.size() + 1 + value.size() + 1;
  size_t length = body + 1;
  while (std::to_string(length).size() + body != length)
    length = std::to_string(length).size() + body;
  *records += std::to_string(length) + " " + std::string(key) + "=" + std::string(value) + "\n";
}

// Pads `data_size` bytes of entry data to a whole block (counted from the entry, since
// the archive may be appended to a string that already holds other bytes).
void AppendPadding(std::string* archive, uint64_t data_size) {
  archive->append(RoundUpToBlock(data_size) - data_size, '\0');
}

void AppendRawHeader(std::string* archive, std::string_view prefix, std::string_view name,
                     std::string_view linkname, char type, uint32_t mode, uint64_t size,
                     uint64_t mtime) {
  char header[kBlockSize] = {};
  PutString(header, kName, name);
  PutOctal(header, kMode, mode);
  PutOctal(header, kUid, 0);
  PutOctal(header, kGid, 0);
  PutOctal(header, kSize, size);
  PutOctal(header, kMtime, mtime);
  header[kTypeOffset] = type;
  PutString(header, kLinkname, linkname);
  PutString(header, kMagic, kPosixMagic);
  PutString(header, kVersion, "00");
  PutOctal(header, kDevMajor, 0);
  PutOctal(header, kDevMinor, 0);
  PutString(header, kPrefix, prefix);
  char* checksum = header + kChecksum.offset;
  PutOctal(header, Field{kChecksum.offset, kChecksum.size - 1}, HeaderChecksums(header).first);
  checksum[kChecksum.size - 1] = ' ';
  archive->append(header, kBlockSize);
}

// Appends the header of one entry, preceded by a PAX header for whatever ustar cannot hold.
void AppendHeader(std::string* archive, const HeaderSpec& spec) {
  std::string pax;
  std::string_view prefix;
  std::string_view name;
  if (!SplitUstarPath(spec.path, &prefix, &name)) {
    AppendPaxRecord(&pax, "path", spec.path);
    prefix = {};
    name = std::string_view(spec.path).substr(0, kName.size);
  }
  if (spec.linkname.size() > kLinkname.size) AppendPaxRecord(&pax, "linkpath", spec.linkname);
  uint64_t size = spec.size;
  if (size > kMaxOctal11) {
    AppendPaxRecord(&pax, "size", std::to_string(size));
    size = 0;
  }
  uint64_t mtime = static_cast<uint64_t>(spec.mtime);
  if (spec.mtime < 0 || mtime > kMaxOctal11) {
    AppendPaxRecord(&pax, "mtime", std::to_string(spec.mtime));
    mtime = 0;
  }
  if (!pax.empty()) {
    AppendRawHeader(archive, "", "././@PaxHeader", "", 'x', 0644, pax.size(), 0);
    archive->append(pax);
    AppendPadding(archive, pax.size());
  }
  AppendRawHeader(archive, prefix, name, spec.linkname, spec.type, spec.mode, size, mtime);
}

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

// Appends header and contents of one regular file, reading exactly the size fstat reports.
Status AppendFile(const std::string& path, const std::string& relative, std::string* archive) {
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
  AppendHeader(archive, spec);
  size_t start = archive->size();
  archive->resize(start + spec.size);
  size_t done = 0;
  while (done < spec.size) {
    ssize_t n = read(fd.get(), archive->data() + start + done, spec.size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Internal("cannot read " + Quote(path) + ": " + ErrnoText());
    if (n == 0) {
      return Status::FailedPrecondition(Quote(path) +
                                        " shrank while it was archived; archive the context "
                                        "again when nothing is writing to it");
    }
    done += static_cast<size_t>(n);
  }
  AppendPadding(archive, spec.size);
  return Status::Ok();
}

Status AppendEntry(const std::string& root, const SourceEntry& entry, std::string* archive) {
  std::string path = root + "/" + entry.relative;
  if (S_ISREG(entry.mode)) return AppendFile(path, entry.relative, archive);
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
  AppendHeader(archive, spec);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------
// Reading and validation

struct ParsedEntry {
  std::string path;      // normalised: no leading "/", no "." or empty components
  char type = kRegular;  // kRegular, kDirectory, kSymlink or kHardLink
  uint32_t mode = 0;
  int64_t mtime = 0;
  std::string linkname;  // symlink: target as stored; hard link: normalised archive path
  std::string_view data;
};

// Values from PAX 'x' and GNU 'L'/'K' headers that apply to the next entry.
struct Overrides {
  std::optional<std::string> path;
  std::optional<std::string> linkpath;
  std::optional<uint64_t> size;
  std::optional<int64_t> mtime;
  bool any() const { return path || linkpath || size || mtime; }
};

std::string_view FieldString(const char* header, Field field) {
  std::string_view raw(header + field.offset, field.size);
  return raw.substr(0, raw.find('\0'));
}

// Reads a numeric field: octal text (space/NUL padded) or GNU base-256 (high bit set),
// which large sizes and negative mtimes use.
std::optional<int64_t> ParseNumericField(const char* header, Field field) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(header + field.offset);
  if (bytes[0] & 0x80) {
    unsigned char invert = (bytes[0] & 0x40) ? 0xff : 0x00;
    uint64_t value = 0;
    for (size_t i = 0; i < field.size; ++i) {
      unsigned char c = bytes[i] ^ invert;
      if (i == 0) c &= 0x7f;
      if ((value >> 56) != 0) return std::nullopt;
      value = (value << 8) | c;
    }
    if ((value >> 63) != 0) return std::nullopt;
    return invert ? ~static_cast<int64_t>(value) : static_cast<int64_t>(value);
  }
  std::string_view text(header + field.offset, field.size);
  size_t begin = text.find_first_not_of(std::string_view(" \0", 2));
  if (begin == std::string_view::npos) return 0;
  size_t end = text.find_last_not_of(std::string_view(" \0", 2));
  int64_t value = 0;
  for (char c : text.substr(begin, end - begin + 1)) {
    if (c < '0' || c > '7' || value > (INT64_MAX >> 3)) return std::nullopt;
    value = value * 8 + (c - '0');
  }
  return value;
}

std::optional<int64_t> ParseDecimal(std::string_view text, bool allow_negative) {
  bool negative = allow_negative && !text.empty() && text.front() == '-';
  if (negative) text.remove_prefix(1);
  if (text.empty() || text.size() > 18) return std::nullopt;
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return negative ? -value : value;
}

Status ParsePaxRecords(std::string_view data, Overrides* out) {
  while (!data.empty()) {
    size_t space = data.find(' ');
    std::optional<int64_t> length =
        ParseDecimal(data.substr(0, space == std::string_view::npos ? 0 : space), false);
    if (!length || static_cast<uint64_t>(*length) > data.size() ||
        static_cast<size_t>(*length) < space + 2 || data[*length - 1] != '\n') {
      return Status::InvalidArgument("malformed PAX extended header record");
    }
    std::string_view record = data.substr(space + 1, *length - space - 2);
    data.remove_prefix(*length);
    size_t equals = record.find('=');
    if (equals == std::string_view::npos) {
      return Status::InvalidArgument("PAX record without '=': " + Quote(record));
    }
    std::string_view key = record.substr(0, equals);
    std::string_view value = record.substr(equals + 1);
    // An empty value removes the key, reverting to the ustar header's field.
    if (key == "path") {
      out->path = value.empty() ? std::nullopt : std::optional<std::string>(value);
    } else if (key == "linkpath") {
      out->linkpath = value.empty() ? std::nullopt : std::optional<std::string>(value);
    } else if (key == "size") {
      std::optional<int64_t> size = ParseDecimal(value, false);
      if (!size) return Status::InvalidArgument("PAX size is not a number: " + Quote(value));
      out->size = static_cast<uint64_t>(*size);
    } else if (key == "mtime") {
      // Fractional seconds are dropped; manifold keeps whole seconds.
      std::optional<int64_t> mtime = ParseDecimal(value.substr(0, value.find('.')), true);
      if (!mtime) return Status::InvalidArgument("PAX mtime is not a number: " + Quote(value));
      out->mtime = *mtime;
    } else if (key.starts_with("GNU.sparse.")) {
      return Status::InvalidArgument("sparse files are not supported");
    }
  }
  return Status::Ok();
}

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

// ---------------------------------------------------------------------------------------
// Writing the validated entries

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

Status WriteTarFromDirectory(const std::string& dir,
                             const std::function<bool(const std::string&, bool)>& exclude,
                             std::string* archive) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) {
    return Status::NotFound("cannot archive " + Quote(dir) + ": " + ErrnoText());
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument("cannot archive " + Quote(dir) + ": it is not a directory");
  }
  std::vector<SourceEntry> entries;
  if (Status s = CollectEntries(dir, "", exclude, &entries); !s.ok()) return s;
  std::sort(entries.begin(), entries.end(),
            [](const SourceEntry& a, const SourceEntry& b) { return a.relative < b.relative; });

  const size_t original_size = archive->size();
  for (const SourceEntry& entry : entries) {
    if (Status s = AppendEntry(dir, entry, archive); !s.ok()) {
      archive->resize(original_size);
      return s;
    }
  }
  archive->append(2 * kBlockSize, '\0');  // end-of-archive marker
  return Status::Ok();
}

Status ExtractTar(std::string_view archive, const std::string& dest_dir,
                  const ExtractLimits& limits) {
  std::vector<ParsedEntry> entries;
  if (Status s = ParseArchive(archive, limits, &entries); !s.ok()) return s;
  if (Status s = ValidateEntries(&entries); !s.ok()) return s;

  std::error_code error;
  std::filesystem::create_directories(dest_dir, error);
  if (error) {
    return Status::Internal("cannot create " + Quote(dest_dir) + ": " + error.message());
  }
  UniqueFd root(open(dest_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return Status::Internal("cannot open " + Quote(dest_dir) + ": " + ErrnoText());

  std::vector<const ParsedEntry*> directories;
  for (const ParsedEntry& entry : entries) {
    if (Status s = WriteEntry(root.get(), entry); !s.ok()) return s;
    if (entry.type == kDirectory) directories.push_back(&entry);
  }
  // Deepest first: a directory's mtime changes when its children are created, and a
  // read-only parent must stay writable until its children are done.
  std::sort(directories.begin(), directories.end(),
            [](const ParsedEntry* a, const ParsedEntry* b) { return a->path > b->path; });
  for (const ParsedEntry* dir : directories) {
    if (Status s = SetDirectoryMetadata(root.get(), *dir); !s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace manifold
