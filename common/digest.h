// Content digests in the OCI form "sha256:<64 lowercase hex>".
//
// Every blob, manifest, index and build context is named by its digest; this is the
// one place that computes and validates them (OpenSSL EVP). Sha256 objects are not
// thread-safe; the free functions are.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace manifold {

// Incremental SHA-256, for data that arrives in pieces (uploads, files).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t size);
  void Update(std::string_view data) { Update(data.data(), data.size()); }
  // Returns "sha256:<hex>". Call once; the object is spent afterwards.
  std::string Finish();

 private:
  struct Context;
  std::unique_ptr<Context> context_;
};

// "sha256:<hex>" of bytes.
std::string Sha256Digest(std::string_view bytes);

// "sha256:<hex>" of a file's contents, streamed.
Result<std::string> Sha256FileDigest(const std::string& path);

// True for "sha256:" followed by 64 lowercase hex digits, the only algorithm manifold
// writes; registries and the API reject anything else at the boundary.
bool IsValidDigest(std::string_view digest);

// The hex part of a valid digest ("sha256:ab.." -> "ab.."), for file names.
std::string DigestHex(std::string_view digest);

}  // namespace manifold
