// ContextSpool: a build context packed once, hashed as it is packed, into a temp file that
// has no name, so that its digest is known before the upload starts and the upload then
// streams from disk. Neither the CLI's memory nor the temp dir holds more than the
// context's packed size, and however the CLI ends (an error, Ctrl-C, a kill) no file is
// left behind: the file is unlinked as soon as it is made and vanishes with its
// descriptor. Not thread-safe; one per build.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "cli/build_args.h"
#include "common/status.h"

namespace manifold {

class ContextSpool {
 public:
  // Packs `context_dir` (WriteTar, with `exclude`) into a temp file in `temp_dir`. Past
  // `limit_bytes` the archive is still counted and hashed but no longer written, so an
  // oversized context tells its full size without filling the temp dir.
  static Result<ContextSpool> Pack(const std::string& context_dir,
                                   const std::function<bool(const std::string&, bool)>& exclude,
                                   const std::string& temp_dir, uint64_t limit_bytes);

  ContextSpool(ContextSpool&& other) noexcept;
  ContextSpool& operator=(ContextSpool&& other) noexcept;
  ContextSpool(const ContextSpool&) = delete;
  ContextSpool& operator=(const ContextSpool&) = delete;
  ~ContextSpool();

  uint64_t size() const { return size_; }
  const std::string& digest() const { return digest_; }
  // The packed archive, readable from offset 0; only whole when size() <= the limit.
  int fd() const { return fd_; }
  // Closes the file, giving its space back; fd() is -1 afterwards.
  void Release();

 private:
  ContextSpool() = default;

  int fd_ = -1;
  uint64_t size_ = 0;
  std::string digest_;
};

// Where to spool: $TMPDIR if set, else /tmp, as mkstemp(3) users do.
std::string SpoolDirectory(const EnvLookup& env);

}  // namespace manifold
