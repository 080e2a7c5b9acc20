// ContextStore: build contexts on the coordinator's disk, named by their sha256.
//
// A context is written to a temporary file and renamed into place only after its digest
// is verified, so a reader never sees a partial or mismatched context and a crash leaves
// at most a stray temporary file. Thread-safe: concurrent puts of one digest are
// harmless (same bytes, atomic rename).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace manifold {

class ContextStore {
 public:
  // Creates `dir` (and dir/contexts) if needed.
  static Result<ContextStore> Open(const std::string& dir);

  bool Has(std::string_view digest) const;
  // InvalidArgument if the body's digest differs from `digest`.
  Status Put(std::string_view digest, std::string_view body) const;
  // The path of a stored context, or NotFound.
  Result<std::string> Path(std::string_view digest) const;

 private:
  explicit ContextStore(std::string dir) : dir_(std::move(dir)) {}
  std::string FileFor(std::string_view digest) const;
  std::string dir_;
};

}  // namespace manifold
