// RegistryClient: the OCI Distribution API (the "/v2/" protocol) for one registry host.
//
// Agents push the blobs and manifest of each built image by digest, and the coordinator
// pushes the image index under each tag, through this client rather than a builder's own
// push, so that every push skips blobs the registry has (HEAD first), verifies digests and
// reports errors the same way. Every failure names the registry, the repository, the
// operation, the HTTP status and what the registry said; transport failures and 5xx/429
// answers are Status::Unavailable so that callers may retry. Authentication is anonymous
// for now: a 401 says so plainly.
//
// Thread-safety: a RegistryClient is immutable after construction; its methods may be
// called from several threads at once.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/http_client.h"
#include "common/layout.h"
#include "common/oci.h"
#include "common/status.h"

namespace manifold {

struct RegistryOptions {
  // http:// instead of https://. Unset means IsLoopbackRegistry(host), as docker does.
  std::optional<bool> plain_http;
  long timeout_ms = 600000;  // per request; a layer upload is one request
  long connect_timeout_ms = 10000;
};

// A manifest or index as the registry holds it.
struct FetchedManifest {
  std::string media_type;
  std::string digest;  // sha256 of bytes, checked against the registry's Docker-Content-Digest
  std::string bytes;
};

// What PushLayout did, for logs and metrics ("pushed N blobs (X bytes), skipped M").
struct PushStats {
  int blobs_pushed = 0;
  int64_t bytes_pushed = 0;
  int blobs_skipped = 0;  // already in the repository
  int64_t bytes_skipped = 0;
};

// Called once per blob of a PushLayout, after it was uploaded or found present.
using BlobPushedCallback = std::function<void(const Descriptor& blob, bool skipped)>;

class RegistryClient {
 public:
  // `host` is "127.0.0.1:5000", "ghcr.io", ... (no scheme).
  explicit RegistryClient(std::string host, RegistryOptions options = {});

  const std::string& host() const { return host_; }
  // "http://host" or "https://host".
  const std::string& base_url() const { return base_url_; }

  // HEAD on the blob: true for 200, false for 404, an error otherwise.
  Result<bool> BlobExists(std::string_view repository, std::string_view digest) const;

  // Monolithic upload: POST an upload session, then PUT the whole body with ?digest=.
  Status PushBlob(std::string_view repository, std::string_view digest,
                  std::string_view bytes) const;
  Status PushBlobFromFile(std::string_view repository, std::string_view digest, int64_t size,
                          const std::string& path) const;

  // PUTs exact bytes under a tag or a digest with Content-Type media_type and returns their
  // digest. A digest reference must equal the bytes' digest.
  Result<std::string> PutManifest(std::string_view repository, std::string_view reference,
                                  std::string_view media_type, std::string_view bytes) const;

  // GETs a manifest or index by tag or digest, accepting OCI and Docker types.
  Result<FetchedManifest> GetManifest(std::string_view repository,
                                      std::string_view reference) const;

  // GETs a blob into memory (following redirects to storage) and verifies its digest.
  // For configs and other small blobs: bodies over 256 MiB are refused.
  Result<std::string> GetBlob(std::string_view repository, std::string_view digest) const;

  // Pushes an image from an OCI layout: config and layers (each skipped when the repository
  // already has it), then the manifest by digest. Returns the manifest's descriptor (media
  // type, digest, size, and the platform from its config when the config declares one).
  // `stats` and `on_blob` may be null.
  Result<Descriptor> PushLayout(const OciLayoutImage& image, std::string_view repository,
                                PushStats* stats = nullptr,
                                const BlobPushedCallback& on_blob = nullptr) const;

 private:
  Status PushBlobBody(std::string_view repository, std::string_view digest,
                      const HttpRequest& body) const;

  std::string host_;
  RegistryOptions options_;
  std::string base_url_;
  HttpClient http_;
};

}  // namespace manifold
