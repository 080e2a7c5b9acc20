#include "common/registry.h"

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/blob_upload.h"
#include "common/digest.h"
#include "common/reference.h"
#include "common/registry_auth.h"
#include "common/registry_errors.h"
#include "common/registry_transport.h"

namespace manifold {
namespace {

constexpr size_t kMaxManifestBytes = size_t{8} << 20;  // registries cap manifests at 4 MiB
// Every manifest type manifold reads, for Accept headers.
const std::string kManifestAccept = std::string(kOciIndex) + ", " + std::string(kOciManifest) +
                                    ", " + std::string(kDockerManifestList) + ", " +
                                    std::string(kDockerManifest);

// Names go into URLs, so each is checked by the Distribution grammar before anything is
// sent; `context` names the registry and the operation.
Status CheckRepository(const std::string& context, std::string_view repository) {
  return ValidateRepositoryName(repository).WithContext(context);
}

// A repository and a blob or manifest digest in it.
Status CheckRepositoryAndDigest(const std::string& context, std::string_view repository,
                                std::string_view digest) {
  if (Status s = CheckRepository(context, repository); !s.ok()) return s;
  if (IsValidDigest(digest)) return Status::Ok();
  return Status::InvalidArgument(context + ": invalid digest \"" + std::string(digest) + "\"");
}

// A manifest reference: a tag or a digest.
Status CheckTagOrDigest(const std::string& context, const std::string& reference) {
  if (IsValidDigest(reference) || IsValidTag(reference)) return Status::Ok();
  return Status::InvalidArgument(context + ": \"" + reference + "\" is neither a tag nor a digest");
}

// "type/subtype; charset=..." -> "type/subtype".
std::string StripParameters(std::string_view content_type) {
  auto semi = content_type.find(';');
  std::string_view t = content_type.substr(0, semi);
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  return std::string(t);
}

// The media type of a manifest served without a useful Content-Type: its mediaType field,
// else what its shape says.
std::string InferMediaType(const std::string& bytes, const std::string& content_type) {
  if (IsManifestMediaType(content_type) || IsIndexMediaType(content_type)) return content_type;
  nlohmann::json j = nlohmann::json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded() && j.is_object()) {
    if (j.contains("mediaType") && j["mediaType"].is_string()) {
      return j["mediaType"].get<std::string>();
    }
    if (j.contains("manifests")) return std::string(kOciIndex);
    if (j.contains("config")) return std::string(kOciManifest);
  }
  return content_type;
}

// Pushes a blob body whose names are checked here.
Status PushBlobBody(const RegistryTransport& transport, std::string_view repository,
                    std::string_view digest, const BlobBody& body, PushStats* stats) {
  const std::string context = "registry " + transport.host() + ": push blob " +
                              std::string(digest) + " to " + std::string(repository);
  if (Status s = CheckRepositoryAndDigest(context, repository, digest); !s.ok()) return s;
  return UploadBlob(transport, std::string(repository), digest, body, stats);
}

}  // namespace

std::string_view RegistryOperationName(RegistryOperation operation) {
  switch (operation) {
    case RegistryOperation::kPing:
      return "ping";
    case RegistryOperation::kToken:
      return "token";
    case RegistryOperation::kBlobHead:
      return "blob_head";
    case RegistryOperation::kBlobGet:
      return "blob_get";
    case RegistryOperation::kBlobMount:
      return "blob_mount";
    case RegistryOperation::kBlobUploadStart:
      return "blob_upload_start";
    case RegistryOperation::kBlobUploadChunk:
      return "blob_upload_chunk";
    case RegistryOperation::kBlobUploadStatus:
      return "blob_upload_status";
    case RegistryOperation::kBlobUpload:
      return "blob_upload";
    case RegistryOperation::kBlobUploadCancel:
      return "blob_upload_cancel";
    case RegistryOperation::kManifestHead:
      return "manifest_head";
    case RegistryOperation::kManifestGet:
      return "manifest_get";
    case RegistryOperation::kManifestPut:
      return "manifest_put";
  }
  return "unknown";
}

std::string RegistryStatusName(long status) {
  return status == 0 ? "error" : std::to_string(status);
}

RegistryClient::RegistryClient(std::string host, RegistryOptions options)
    : host_(host),
      transport_(std::make_unique<RegistryTransport>(std::move(host), std::move(options))) {}

RegistryClient::~RegistryClient() = default;

const std::string& RegistryClient::base_url() const { return transport_->base_url(); }

Status RegistryClient::CheckAccess() const {
  HttpRequest request;
  request.url = transport_->base_url() + "/v2/";
  Result<HttpResponse> response = transport_->Send(RegistryOperation::kPing, request, {},
                                                   "check access (GET /v2/)", /*retry=*/true);
  if (!response.ok()) return response.status();
  if (response->status != 200)
    return RegistryHttpError(host_, "check access (GET /v2/)", *response);
  return Status::Ok();
}

Result<std::optional<HttpResponse>> RegistryClient::Head(RegistryOperation kind,
                                                         std::string_view repository,
                                                         std::string_view collection,
                                                         std::string_view digest,
                                                         const std::string& operation) const {
  const std::string context = "registry " + host_ + ": " + operation;
  if (Status s = CheckRepositoryAndDigest(context, repository, digest); !s.ok()) return s;
  const std::string repo(repository);
  HttpRequest request;
  request.method = "HEAD";
  request.url = transport_->base_url() + "/v2/" + repo + "/" + std::string(collection) + "/" +
                std::string(digest);
  // Registries answer 404 for a manifest of a type the client did not say it accepts.
  request.headers = {{"Accept", kManifestAccept}};
  request.follow_redirects = true;
  Result<HttpResponse> response =
      transport_->Send(kind, request, {PullScope(repo)}, operation, /*retry=*/true);
  if (!response.ok()) return response.status();
  if (response->status == 200) return std::optional<HttpResponse>(std::move(*response));
  if (response->status == 404) return std::optional<HttpResponse>();
  return RegistryHttpError(host_, operation, *response);
}

Result<bool> RegistryClient::BlobExists(std::string_view repository,
                                        std::string_view digest) const {
  const std::string operation =
      "check blob " + std::string(digest) + " in " + std::string(repository);
  Result<std::optional<HttpResponse>> found =
      Head(RegistryOperation::kBlobHead, repository, "blobs", digest, operation);
  if (!found.ok()) return found.status();
  return found->has_value();
}

Result<bool> RegistryClient::ManifestExists(std::string_view repository,
                                            std::string_view digest) const {
  Result<std::optional<Descriptor>> found = StatManifest(repository, digest);
  if (!found.ok()) return found.status();
  return found->has_value();
}

Result<std::optional<Descriptor>> RegistryClient::StatManifest(std::string_view repository,
                                                               std::string_view digest) const {
  const std::string operation =
      "check manifest " + std::string(repository) + "@" + std::string(digest);
  const std::string context = "registry " + host_ + ": " + operation;
  Result<std::optional<HttpResponse>> response =
      Head(RegistryOperation::kManifestHead, repository, "manifests", digest, operation);
  if (!response.ok()) return response.status();
  if (!response->has_value()) return std::optional<Descriptor>();
  const HttpResponse& answer = **response;
  Descriptor found;
  found.media_type = answer.Header("content-type");
  found.digest = answer.Header("docker-content-digest");
  if (found.digest.empty()) found.digest = std::string(digest);
  if (found.digest != digest) {
    return Status::Internal(context + ": it answered for " + found.digest);
  }
  const std::string length = answer.Header("content-length");
  char* end = nullptr;
  found.size = std::strtoll(length.c_str(), &end, 10);
  if (length.empty() || *end != '\0' || found.size < 0) {
    return Status::Internal(context + ": no valid Content-Length in its answer (" + length + ")");
  }
  return std::optional<Descriptor>(std::move(found));
}

Status RegistryClient::PushBlob(std::string_view repository, std::string_view digest,
                                std::string_view bytes, PushStats* stats) const {
  BlobBody body;
  body.memory = bytes;
  body.size = static_cast<int64_t>(bytes.size());
  return PushBlobBody(*transport_, repository, digest, body, stats);
}

Status RegistryClient::PushBlobFromFile(std::string_view repository, std::string_view digest,
                                        int64_t size, const std::string& path,
                                        PushStats* stats) const {
  std::error_code ec;
  const auto actual = std::filesystem::file_size(path, ec);
  if (ec) {
    return Status::NotFound("registry " + host_ + ": push blob " + std::string(digest) + " to " +
                            std::string(repository) + ": cannot read " + path + ": " +
                            ec.message());
  }
  if (static_cast<int64_t>(actual) != size) {
    return Status::InvalidArgument("registry " + host_ + ": push blob " + std::string(digest) +
                                   ": " + path + " is " + std::to_string(actual) +
                                   " bytes but the descriptor says " + std::to_string(size));
  }
  BlobBody body;
  body.path = path;
  body.size = size;
  return PushBlobBody(*transport_, repository, digest, body, stats);
}

Result<bool> RegistryClient::MountBlob(std::string_view repository, std::string_view digest,
                                       std::string_view from_repository) const {
  const std::string repo(repository);
  const std::string from(from_repository);
  const std::string operation =
      "mount blob " + std::string(digest) + " from " + from + " into " + repo;
  const std::string context = "registry " + host_ + ": " + operation;
  if (Status s = CheckRepositoryAndDigest(context, repository, digest); !s.ok()) return s;
  if (Status s = CheckRepository(context, from_repository); !s.ok()) return s;
  HttpRequest request;
  request.method = "POST";
  request.url = transport_->base_url() + "/v2/" + repo +
                "/blobs/uploads/?mount=" + UrlEncode(digest) + "&from=" + UrlEncode(from);
  // Pull on the source and push on the target, in one token.
  Result<HttpResponse> response = transport_->Send(RegistryOperation::kBlobMount, request,
                                                   {PushScope(repo), PullScope(from)}, operation,
                                                   /*retry=*/true);
  if (!response.ok()) return response.status();
  if (response->status == 201) return true;
  if (response->status != 202) return RegistryHttpError(host_, operation, *response);
  // Declined: abandon the upload session it opened instead.
  CancelUpload(repo, request.url, response->Header("location"));
  return false;
}

void RegistryClient::CancelUpload(const std::string& repository, const std::string& request_url,
                                  const std::string& location) const {
  if (location.empty()) return;
  HttpRequest cancel;
  cancel.method = "DELETE";
  cancel.url = transport_->ResolveLocation(request_url, location);
  static_cast<void>(transport_->Send(RegistryOperation::kBlobUploadCancel, cancel,
                                     {PushScope(repository)}, "cancel upload in " + repository,
                                     /*retry=*/false));
}

Status RegistryClient::CheckPushAccess(std::string_view repository) const {
  const std::string repo(repository);
  const std::string operation = "check push access to " + repo + " (open an upload session)";
  if (Status s = CheckRepository("registry " + host_ + ": " + operation, repository); !s.ok()) {
    return s;
  }
  HttpRequest request;
  request.method = "POST";
  request.url = transport_->base_url() + "/v2/" + repo + "/blobs/uploads/";
  Result<HttpResponse> response = transport_->Send(RegistryOperation::kBlobUploadStart, request,
                                                   {PushScope(repo)}, operation, /*retry=*/true);
  if (!response.ok()) return response.status();
  if (response->status != 202) return RegistryHttpError(host_, operation, *response);
  CancelUpload(repo, request.url, response->Header("location"));
  return Status::Ok();
}

Result<std::string> RegistryClient::PutManifest(std::string_view repository,
                                                std::string_view reference,
                                                std::string_view media_type, std::string_view bytes,
                                                bool* blob_unknown) const {
  const std::string repo(repository);
  const std::string ref(reference);
  const std::string operation = "put manifest " + repo + (IsValidDigest(ref) ? "@" : ":") + ref;
  const std::string context = "registry " + host_ + ": " + operation;
  if (Status s = CheckRepository(context, repository); !s.ok()) return s;
  if (Status s = CheckTagOrDigest(context, ref); !s.ok()) return s;
  if (media_type.empty()) return Status::InvalidArgument(context + ": no media type given");
  const std::string digest = Sha256Digest(bytes);
  if (IsValidDigest(ref) && ref != digest) {
    return Status::InvalidArgument(context + ": the manifest's bytes have digest " + digest);
  }
  HttpRequest request;
  request.method = "PUT";
  request.url = transport_->base_url() + "/v2/" + repo + "/manifests/" + ref;
  request.headers = {{"Content-Type", std::string(media_type)}};
  request.body = std::string(bytes);
  // PUT of the same bytes is idempotent, so it is safe to retry.
  Result<HttpResponse> response = transport_->Send(RegistryOperation::kManifestPut, request,
                                                   {PushScope(repo)}, operation, /*retry=*/true);
  if (!response.ok()) return response.status();
  if (response->status != 201 && response->status != 200) {
    if (blob_unknown != nullptr) {
      *blob_unknown =
          response->status == 400 && HasRegistryErrorCode(response->body, "MANIFEST_BLOB_UNKNOWN");
    }
    return RegistryHttpError(host_, operation, *response);
  }
  std::string stored = response->Header("docker-content-digest");
  if (!stored.empty() && stored != digest) {
    return Status::Internal(context + ": the registry reports digest " + stored +
                            " for bytes whose digest is " + digest +
                            " (did it rewrite the manifest?)");
  }
  return digest;
}

Result<std::string> RegistryClient::PutManifestRepairing(
    std::string_view repository, std::string_view reference, std::string_view media_type,
    std::string_view bytes, const std::function<Status()>& repair) const {
  constexpr int kTries = 3;
  bool blob_unknown = false;
  Result<std::string> digest = PutManifest(repository, reference, media_type, bytes, &blob_unknown);
  for (int tried = 1; !digest.ok() && blob_unknown && tried < kTries; ++tried) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250 * tried));
    if (Status repaired = repair(); !repaired.ok()) return repaired;
    digest = PutManifest(repository, reference, media_type, bytes, &blob_unknown);
  }
  return digest;
}

Result<FetchedManifest> RegistryClient::GetManifest(std::string_view repository,
                                                    std::string_view reference) const {
  const std::string repo(repository);
  const std::string ref(reference);
  const std::string operation = "get manifest " + repo + (IsValidDigest(ref) ? "@" : ":") + ref;
  const std::string context = "registry " + host_ + ": " + operation;
  if (Status s = CheckRepository(context, repository); !s.ok()) return s;
  if (Status s = CheckTagOrDigest(context, ref); !s.ok()) return s;
  HttpRequest request;
  request.url = transport_->base_url() + "/v2/" + repo + "/manifests/" + ref;
  request.headers = {{"Accept", kManifestAccept}};
  request.max_body_bytes = kMaxManifestBytes;
  Result<HttpResponse> response = transport_->Send(RegistryOperation::kManifestGet, request,
                                                   {PullScope(repo)}, operation, /*retry=*/true);
  if (!response.ok()) return response.status();
  if (response->status != 200) return RegistryHttpError(host_, operation, *response);

  FetchedManifest out;
  out.bytes = std::move(response->body);
  out.digest = Sha256Digest(out.bytes);
  out.media_type = InferMediaType(out.bytes, StripParameters(response->Header("content-type")));
  if (IsValidDigest(ref) && ref != out.digest) {
    return Status::Internal(context + ": the registry returned content with digest " + out.digest);
  }
  std::string stored = response->Header("docker-content-digest");
  if (IsValidDigest(stored) && stored != out.digest) {
    return Status::Internal(context + ": the registry says the digest is " + stored +
                            " but the bytes it sent have digest " + out.digest);
  }
  return out;
}

Result<HttpResponse> RegistryClient::GetBlobResponse(std::string_view repository,
                                                     std::string_view digest,
                                                     const std::string& operation,
                                                     HttpRequest request) const {
  const std::string context = "registry " + host_ + ": " + operation;
  if (Status s = CheckRepositoryAndDigest(context, repository, digest); !s.ok()) return s;
  request.url =
      transport_->base_url() + "/v2/" + std::string(repository) + "/blobs/" + std::string(digest);
  request.follow_redirects = true;  // registries may send blob reads to their storage
  Result<HttpResponse> response = transport_->Send(RegistryOperation::kBlobGet, request,
                                                   {PullScope(std::string(repository))}, operation,
                                                   /*retry=*/true);
  if (!response.ok()) return response.status();
  if (response->status != 200) return RegistryHttpError(host_, operation, *response);
  return response;
}

Result<std::string> RegistryClient::GetBlob(std::string_view repository,
                                            std::string_view digest) const {
  const std::string operation =
      "get blob " + std::string(digest) + " from " + std::string(repository);
  Result<HttpResponse> response = GetBlobResponse(repository, digest, operation, HttpRequest());
  if (!response.ok()) return response.status();
  std::string actual = Sha256Digest(response->body);
  if (actual != digest) {
    return Status::Internal("registry " + host_ + ": " + operation +
                            ": the content received has digest " + actual);
  }
  return std::move(response->body);
}

Result<uint64_t> RegistryClient::GetBlobToFile(std::string_view repository, std::string_view digest,
                                               const std::string& path) const {
  const std::string operation =
      "get blob " + std::string(digest) + " from " + std::string(repository) + " into " + path;
  // Each try writes the file afresh; it gets its name only once verified.
  HttpRequest request;
  request.response_file = path + ".partial";
  Result<HttpResponse> response = GetBlobResponse(repository, digest, operation, request);
  std::error_code ec;
  if (!response.ok()) {
    std::filesystem::remove(request.response_file, ec);
    return response.status();
  }
  Result<std::string> actual = Sha256FileDigest(request.response_file);
  if (!actual.ok() || *actual != digest) {
    std::filesystem::remove(request.response_file, ec);
    return Status::Internal("registry " + host_ + ": " + operation +
                            (actual.ok() ? ": the content received has digest " + *actual
                                         : ": " + actual.status().message()));
  }
  uint64_t size = std::filesystem::file_size(request.response_file, ec);
  std::filesystem::rename(request.response_file, path, ec);
  if (ec) {
    std::filesystem::remove(request.response_file, ec);
    return Status::Internal("registry " + host_ + ": " + operation + ": cannot name it " + path);
  }
  return size;
}

}  // namespace manifold
