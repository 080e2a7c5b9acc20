// Tar format: the on-disk layout of POSIX ustar headers and the PAX and GNU extensions,
// shared by the writer (tar_writer.cc), the reader (tar_reader.h) and the extractor
// (tar_extract.cc) of tar.h; not an API of its own.
//
// Writing emits ustar headers, preceded by a PAX extended header for a path, link target,
// size or mtime ustar cannot hold. Reading decodes octal and GNU base-256 numbers and
// PAX records. Also here: the small file-descriptor and path helpers those three files
// share. Pure functions and plain values; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace manifold::tar {

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

std::string Quote(std::string_view text);
std::string ErrnoText();  // strerror(errno)

uint64_t RoundUpToBlock(uint64_t size);

// Sums the header bytes with the checksum field read as spaces, both as unsigned and as
// signed chars, because some historical writers used signed sums.
std::pair<int64_t, int64_t> HeaderChecksums(const char* header);

// Owns a file descriptor, closing it when destroyed.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd();
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

// The non-empty components of a '/'-separated path, "." dropped.
std::vector<std::string_view> SplitPath(std::string_view path);
// The first `count` parts joined by '/'.
std::string JoinPath(const std::vector<std::string_view>& parts, size_t count);

// ---------------------------------------------------------------------------------------
// Writing

// One entry's header as the writer knows it.
struct HeaderSpec {
  std::string path;  // directories end in '/'
  std::string linkname;
  char type = kRegular;
  uint32_t mode = 0;
  int64_t mtime = 0;
  uint64_t size = 0;
};

// Appends the header of one entry, preceded by a PAX header for whatever ustar cannot hold.
void AppendHeader(std::string* archive, const HeaderSpec& spec);

// Pads `data_size` bytes of entry data to a whole block (counted from the entry, since
// the archive may be appended to a string that already holds other bytes).
void AppendPadding(std::string* archive, uint64_t data_size);

// ---------------------------------------------------------------------------------------
// Reading

// A NUL-terminated text field.
std::string_view FieldString(const char* header, Field field);

// Reads a numeric field: octal text (space/NUL padded) or GNU base-256 (high bit set),
// which large sizes and negative mtimes use.
std::optional<int64_t> ParseNumericField(const char* header, Field field);

// Values from PAX 'x' and GNU 'L'/'K' headers that apply to the next entry.
struct Overrides {
  std::optional<std::string> path;
  std::optional<std::string> linkpath;
  std::optional<uint64_t> size;
  std::optional<int64_t> mtime;
  bool any() const { return path || linkpath || size || mtime; }
};

// Applies the records of a PAX extended header ("<length> <key>=<value>\n"...) to *out.
Status ParsePaxRecords(std::string_view data, Overrides* out);

}  // namespace manifold::tar
