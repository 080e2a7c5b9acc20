// ContextStore: where the coordinator keeps build contexts, named by their sha256, behind
// an interface so that coordinators sharing one store can plug in another implementation
// (the disk one is coordinator/disk_context_store.h).
//
// Stream-shaped, so that no context is ever held whole in memory: a put is a writer that
// takes chunks and is committed with the digest they must hash to; a read is a reader at
// offsets. A context that fails verification counts as missing, so that its uploader
// sends it again. Thread-safe: every method may be called from any thread; writers and
// readers belong to one thread each.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "common/status.h"

namespace manifold {

// A context being stored. Destroying it before Commit, or after a failed Commit, leaves
// nothing behind.
class ContextWriter {
 public:
  virtual ~ContextWriter() = default;
  virtual Status Append(std::string_view chunk) = 0;
  // Makes the context readable under `digest` once the bytes appended hash to it and are
  // durable; InvalidArgument (and nothing stored) if they hash to another digest.
  virtual Status Commit(std::string_view digest) = 0;
  virtual uint64_t size() const = 0;  // bytes appended so far
};

// A stored context, open for reading; it stays readable while open, even if collected.
class ContextReader {
 public:
  virtual ~ContextReader() = default;
  virtual uint64_t size() const = 0;
  // Up to `length` bytes from `offset` into `buffer`; 0 at the end.
  virtual Result<size_t> ReadAt(uint64_t offset, char* buffer, size_t length) = 0;
};

// What Collect may delete: contexts unused for longer than max_age, then the least
// recently used until at most max_bytes are stored, but never one in `needed` nor one used
// within `grace` (a context uploaded for a build that is not submitted yet).
struct ContextRetention {
  std::chrono::seconds max_age{7 * 86400};  // zero: no age limit
  uint64_t max_bytes = 20ull << 30;         // zero: no size limit
  std::chrono::seconds grace{600};
};

struct ContextCollection {
  uint64_t bytes_stored = 0;  // after collecting
  uint64_t contexts_stored = 0;
  int deleted_by_age = 0;
  int deleted_by_size = 0;
  int deleted_corrupt = 0;  // found damaged on read since the last Collect
};

class ContextStore {
 public:
  virtual ~ContextStore() = default;

  // Whether an intact context with this digest is stored. A use: it keeps the context
  // from being collected for a while.
  virtual bool Has(std::string_view digest) = 0;
  virtual Result<std::unique_ptr<ContextWriter>> Put() = 0;
  // NotFound if there is no intact context with this digest. A use, as Has.
  virtual Result<std::unique_ptr<ContextReader>> Open(std::string_view digest) = 0;
  // Deletes what `retention` allows; `needed` holds the digests of unfinished builds.
  virtual Result<ContextCollection> Collect(const ContextRetention& retention,
                                            const std::set<std::string>& needed) = 0;
};

}  // namespace manifold
