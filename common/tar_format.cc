#include "common/tar_format.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

namespace manifold::tar {
namespace {

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

}  // namespace

std::string Quote(std::string_view text) { return "\"" + std::string(text) + "\""; }
std::string ErrnoText() { return std::strerror(errno); }

uint64_t RoundUpToBlock(uint64_t size) { return (size + kBlockSize - 1) / kBlockSize * kBlockSize; }

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

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) close(fd_);
}

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

void AppendPadding(std::string* archive, uint64_t data_size) {
  archive->append(RoundUpToBlock(data_size) - data_size, '\0');
}

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

std::string_view FieldString(const char* header, Field field) {
  std::string_view raw(header + field.offset, field.size);
  return raw.substr(0, raw.find('\0'));
}

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

}  // namespace manifold::tar
