// RegistryClient: the OCI Distribution API (the "/v2/" protocol) for one registry host.
//
// Agents push the blobs and manifest of each built image by digest, and the coordinator
// pushes the image index under each tag, through this client rather than a builder's own
// push, so that every push skips blobs the registry has (HEAD first), verifies digests and
// reports errors the same way. Every failure names the registry, the repository, the
// operation, the HTTP status and what the registry said; transport failures and 5xx/429
// answers are retried here with exponential back-off and jitter (bounded in count and
// time) and, when they persist, are Status::Unavailable so that callers may retry later.
//
// Authentication follows docker: credentials from config.json (see docker_config.h), Basic
// when the registry's WWW-Authenticate challenge asks for it, otherwise a Bearer token from
// the challenge's realm for exactly the scopes an operation needs, cached until it expires.
// TLS is verified; a registry's own CA and client certificate come from
// CERTS_DIR/HOST[:PORT]/ (*.crt, *.cert + *.key) as docker's certs.d. Plain HTTP is used
// only for registries listed insecure, and for loopback hosts without a certs.d entry.
// Repository names and tags are checked by reference.h's Distribution grammar before they
// go into a URL. Secrets never appear in a Status or a log. An answer that is an HTML
// page (a login portal, a proxy's error page, a web server at the wrong address) is an
// error naming what was asked, never taken for the registry's consent.
//
// Blobs cross repositories of one registry by mount (POST ?mount=&from=), so an image
// pushed to several repositories, or merged into an index in another repository, is
// uploaded once. One client reuses its connections (see http_client.h): keep one per
// registry for a run of operations.
//
// The client is the /v2/ verbs; the parts they share live beside it: registry_transport.h
// (sending, retries), registry_auth.h (challenges, credentials, tokens), registry_tls.h
// (certs.d), registry_errors.h (answers as Status), blob_upload.h (upload sessions), and
// image_transfer.cc (PushLayout and CopyImage, built from the verbs).
//
// Thread-safety: all methods may be called from several threads at once; the token cache
// is guarded by a mutex.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/docker_config.h"
#include "common/http_client.h"
#include "common/layout.h"
#include "common/oci.h"
#include "common/status.h"

namespace manifold {

// Called while a blob uploads: bytes the registry has confirmed so far, and the total.
using UploadProgressCallback =
    std::function<void(std::string_view digest, int64_t done, int64_t total)>;

// The requests the client sends, by what they do: a small fixed set, so that a metric
// labelled with RegistryOperationName has a bounded number of series whatever the
// repositories, digests and tags.
enum class RegistryOperation {
  kPing,              // GET /v2/ (CheckAccess)
  kToken,             // GET or POST to a token server's realm
  kBlobHead,          // HEAD on a blob: does the repository have it?
  kBlobGet,           // GET a blob
  kBlobMount,         // POST ?mount=&from=: link a blob from another repository
  kBlobUploadStart,   // POST: open an upload session
  kBlobUploadChunk,   // PATCH: one chunk of a chunked upload
  kBlobUploadStatus,  // GET on an upload session: where to resume
  kBlobUpload,        // PUT ?digest=: the body, or the closing PUT after chunks
  kBlobUploadCancel,  // DELETE on an upload session a declined mount or an access check opened
  kManifestHead,      // HEAD on a manifest or index by digest
  kManifestGet,       // GET a manifest or index
  kManifestPut,       // PUT a manifest or index
};

// "blob_head", "manifest_put", ...: the label value for an operation.
std::string_view RegistryOperationName(RegistryOperation operation);

// The label value for a request's outcome: the HTTP status ("200", "404", ...), or
// "error" for status 0, which RegistryRequestObserver uses for "no answer".
std::string RegistryStatusName(long status);

// Called once per HTTP request the client sent, each try of a retried request and each
// answered authentication challenge included: what the request did, and the HTTP status
// of the answer or 0 when none came (connection refused or reset, timeout, TLS failure).
// Called on the thread that sent the request; it must be thread-safe and quick.
using RegistryRequestObserver = std::function<void(RegistryOperation operation, long status)>;

struct RegistryOptions {
  // http:// instead of https://. Unset: plain HTTP when the host is in insecure_registries,
  // or when it is a loopback host (as docker treats them) without a certs.d directory.
  std::optional<bool> plain_http;
  std::vector<std::string> insecure_registries;  // "host[:port]" allowed plain HTTP
  long timeout_ms = 600000;  // per request; a monolithic upload or one chunk is one request
  long connect_timeout_ms = 10000;

  // Credentials: these when set, else the docker config.json in docker_config_dir (unset:
  // DockerConfigDir()); none found means anonymous.
  std::optional<RegistryCredentials> credentials;
  std::optional<std::string> docker_config_dir;
  // docker's per-registry TLS directory root: CERTS_DIR/HOST[:PORT]/.
  std::string certs_dir = "/etc/docker/certs.d";

  // Retries of one request (and restarts of one blob upload) on connection errors, 408,
  // 429 and 5xx: at most max_attempts tries, back-off doubling from initial_backoff_ms up
  // to max_backoff_ms with jitter, Retry-After honoured up to max_backoff_ms, and no new
  // try once retry_budget_ms have passed since the first (for a chunked upload: since the
  // last chunk that made progress).
  int max_attempts = 5;
  long initial_backoff_ms = 250;
  long max_backoff_ms = 10000;
  long retry_budget_ms = 120000;

  // Blobs larger than this are uploaded in PATCH chunks of chunk_bytes (or the registry's
  // OCI-Chunk-Min-Length when larger), so a dropped connection costs one chunk.
  int64_t chunked_threshold_bytes = int64_t{64} << 20;
  int64_t chunk_bytes = int64_t{16} << 20;

  UploadProgressCallback on_upload_progress;  // may be empty
  RegistryRequestObserver on_request;         // may be empty; for metrics
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
  int blobs_mounted = 0;  // mounted from another repository of the registry
  int64_t bytes_mounted = 0;
  int uploads_resumed = 0;    // chunked uploads continued from the registry's Range
  int uploads_restarted = 0;  // uploads begun again in a new session
  int requests_retried = 0;   // requests sent again after a transient failure
};

// Called once per blob of a PushLayout, after it was uploaded (skipped false) or found
// present or mounted (skipped true: no bytes sent).
using BlobPushedCallback = std::function<void(const Descriptor& blob, bool skipped)>;

class RegistryTransport;  // registry_transport.h

class RegistryClient {
 public:
  // `host` is "127.0.0.1:5000", "ghcr.io", ... (no scheme).
  explicit RegistryClient(std::string host, RegistryOptions options = {});
  ~RegistryClient();

  const std::string& host() const { return host_; }
  // "http://host" or "https://host".
  const std::string& base_url() const;

  // GET /v2/, authenticating as a client would: Ok when the registry answers and accepts
  // the credentials (what `docker login` checks before it stores them).
  Status CheckAccess() const;

  // HEAD on the blob: true for 200, false for 404, an error otherwise.
  Result<bool> BlobExists(std::string_view repository, std::string_view digest) const;
  // HEAD on the manifest (or index) by digest: true for 200, false for 404.
  Result<bool> ManifestExists(std::string_view repository, std::string_view digest) const;
  // HEAD on the manifest (or index) by digest: its descriptor (media type and size from
  // the registry's headers) for 200, nullopt for 404. An answer naming another digest is
  // an error.
  Result<std::optional<Descriptor>> StatManifest(std::string_view repository,
                                                 std::string_view digest) const;

  // Uploads a blob: POST an upload session, then one PUT with ?digest= (small blobs) or
  // PATCH chunks and a closing PUT (large ones, file bodies only), resuming from the
  // registry's Range after a failed chunk or restarting the session when it is gone.
  // `stats` (may be null) counts resumes, restarts and retries.
  Status PushBlob(std::string_view repository, std::string_view digest, std::string_view bytes,
                  PushStats* stats = nullptr) const;
  Status PushBlobFromFile(std::string_view repository, std::string_view digest, int64_t size,
                          const std::string& path, PushStats* stats = nullptr) const;

  // Cross-repository mount (POST ?mount=DIGEST&from=FROM): true when the registry linked
  // the blob, false when it declined (it answered with an upload session instead, which
  // is abandoned; upload the blob then).
  Result<bool> MountBlob(std::string_view repository, std::string_view digest,
                         std::string_view from_repository) const;

  // Proves that this client may push to `repository` without changing it: opens an upload
  // session (POST /v2/NAME/blobs/uploads/) and cancels it (DELETE of its Location), as
  // registries have no "may I push?" query. Ok when the registry opened the session; its
  // refusal (HTTP 401, 403, ...) is an error naming the repository.
  Status CheckPushAccess(std::string_view repository) const;

  // PUTs exact bytes under a tag or a digest with Content-Type media_type and returns their
  // digest. A digest reference must equal the bytes' digest.
  Result<std::string> PutManifest(std::string_view repository, std::string_view reference,
                                  std::string_view media_type, std::string_view bytes) const {
    return PutManifest(repository, reference, media_type, bytes, nullptr);
  }

  // PutManifest for a manifest or index whose blobs or child manifests were just pushed.
  // A registry may refuse it for one it has just acknowledged (MANIFEST_BLOB_UNKNOWN) when
  // another push of the same content to the repository ran at that moment
  // (docker-registry rewrites the repository's link in place): then `repair` checks what
  // the manifest refers to and puts back what is missing, and the manifest is put again,
  // three tries in all. A refusal that persists is the registry's error, not retryable
  // (the blob may really be missing); an error of `repair` is returned as it is.
  Result<std::string> PutManifestRepairing(std::string_view repository, std::string_view reference,
                                           std::string_view media_type, std::string_view bytes,
                                           const std::function<Status()>& repair) const;

  // GETs a manifest or index by tag or digest, accepting OCI and Docker types.
  Result<FetchedManifest> GetManifest(std::string_view repository,
                                      std::string_view reference) const;

  // GETs a blob into memory (following redirects to storage) and verifies its digest.
  // For configs and other small blobs: bodies over 256 MiB are refused.
  Result<std::string> GetBlob(std::string_view repository, std::string_view digest) const;
  // GETs a blob into the file `path` as it arrives, so its size is bounded by the disk,
  // not by memory, and verifies its digest; the file appears only whole and verified.
  // Returns its size.
  Result<uint64_t> GetBlobToFile(std::string_view repository, std::string_view digest,
                                 const std::string& path) const;

  // Pushes an image from an OCI layout: config and layers (each skipped when the repository
  // already has it, else mounted from `mount_from` when that is set and the registry
  // agrees, else uploaded), then the manifest by digest. Returns the manifest's descriptor
  // (media type, digest, size, and the platform from its config when the config declares
  // one). `stats` and `on_blob` may be null.
  Result<Descriptor> PushLayout(const OciLayoutImage& image, std::string_view repository,
                                PushStats* stats = nullptr,
                                const BlobPushedCallback& on_blob = nullptr,
                                std::string_view mount_from = {}) const;

  // Makes the single-platform image `digest` of repository `from` exist in repository `to`
  // of this registry: nothing when a HEAD finds it there; otherwise each blob is skipped,
  // mounted from `from`, or (when the registry declines mounts) downloaded and uploaded,
  // and then the manifest's exact bytes are PUT by digest. `stats` may be null.
  Status CopyImage(std::string_view from, std::string_view to, std::string_view digest,
                   PushStats* stats = nullptr) const;

 private:
  // PutManifest; *blob_unknown (when not null) tells whether the registry refused the
  // manifest for a blob it does not find in the repository (MANIFEST_BLOB_UNKNOWN).
  Result<std::string> PutManifest(std::string_view repository, std::string_view reference,
                                  std::string_view media_type, std::string_view bytes,
                                  bool* blob_unknown) const;
  // Abandons the upload session at `location` (from the answer to `request_url`) in
  // `repository`, so it does not linger. Best effort: a registry expires an upload
  // session nobody cancels.
  void CancelUpload(const std::string& repository, const std::string& request_url,
                    const std::string& location) const;
  // HEAD on blob or manifest `digest` of `repository` (`collection` is "blobs" or
  // "manifests"; every manifest type accepted), after checking both names: the answer
  // for 200, nullopt for 404, an error otherwise.
  Result<std::optional<HttpResponse>> Head(RegistryOperation kind, std::string_view repository,
                                           std::string_view collection, std::string_view digest,
                                           const std::string& operation) const;

  // GET of blob `digest` of `repository` (the body in memory, or in request->response_file
  // when that is set), after checking both names: the 200 answer or an error. `operation`
  // names it in errors.
  Result<HttpResponse> GetBlobResponse(std::string_view repository, std::string_view digest,
                                       const std::string& operation, HttpRequest request) const;

  std::string host_;
  std::unique_ptr<const RegistryTransport> transport_;  // shared by every operation
};

}  // namespace manifold
