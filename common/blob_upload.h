// Blob upload: one blob's bytes into one repository of a registry, as the OCI Distribution
// spec's upload sessions carry them.
//
// A session opens with POST; small blobs (and every in-memory body) then go in one PUT
// with ?digest=, large files in PATCH chunks of RegistryOptions::chunk_bytes (or the
// registry's OCI-Chunk-Min-Length when larger) and a closing PUT, so that a dropped
// connection costs one chunk: after a failed chunk the upload resumes from the Range the
// registry reports, and when the session itself is gone a new one begins, within the
// retry bounds of RegistryOptions, which count afresh from each chunk that made progress.
// Progress goes to RegistryOptions::on_upload_progress.
//
// Thread-safety: UploadBlob keeps no state of its own; several uploads may run at once
// through one transport.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/registry.h"
#include "common/registry_transport.h"
#include "common/status.h"

namespace manifold {

// What a blob upload sends: bytes in memory, or a file (path) of known size.
struct BlobBody {
  std::string_view memory;
  std::string path;
  int64_t size = 0;
};

// Uploads `body` as blob `digest` (already validated, as is `repository`) of
// `repository`, restarting the session while that may help. `stats` (may be null) counts
// resumes, restarts and retries.
Status UploadBlob(const RegistryTransport& transport, const std::string& repository,
                  std::string_view digest, const BlobBody& body, PushStats* stats);

}  // namespace manifold
