#include "common/registry.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "common/digest.h"
#include "common/reference.h"

namespace manifold {
namespace {

constexpr size_t kMaxManifestBytes = size_t{8} << 20;  // registries cap manifests at 4 MiB
constexpr size_t kMaxErrorBodyShown = 512;

bool IsAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// The repository grammar of the Distribution spec, enforced here too because the name is
// pasted into URLs: lowercase components of [a-z0-9] joined by '.', '_' or '-', split by '/'.
bool IsValidRepository(std::string_view repo) {
  if (repo.empty() || repo.size() > 255) return false;
  size_t start = 0;
  while (start <= repo.size()) {
    size_t end = repo.find('/', start);
    if (end == std::string_view::npos) end = repo.size();
    std::string_view part = repo.substr(start, end - start);
    if (part.empty() || !IsAlnum(part.front()) || !IsAlnum(part.back())) return false;
    for (char c : part) {
      if (!IsAlnum(c) && c != '.' && c != '_' && c != '-') return false;
    }
    start = end + 1;
  }
  return true;
}

bool IsValidTag(std::string_view tag) {
  if (tag.empty() || tag.size() > 128) return false;
  for (size_t i = 0; i < tag.size(); ++i) {
    char c = tag[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || (i > 0 && (c == '.' || c == '-'));
    if (!ok) return false;
  }
  return true;
}

// A readable excerpt of what the registry said: the Distribution error list when the body
// is one ({"errors":[{"code","message","detail"}]}), else the raw body, shortened.
std::string DescribeBody(const std::string& body) {
  if (body.empty()) return "empty body";
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded() && j.is_object() && j.contains("errors") && j["errors"].is_array()) {
    std::string out;
    for (const auto& e : j["errors"]) {
      if (!e.is_object()) continue;
      if (!out.empty()) out += "; ";
      if (e.contains("code") && e["code"].is_string()) out += e["code"].get<std::string>();
      if (e.contains("message") && e["message"].is_string()) {
        out += ": " + e["message"].get<std::string>();
      }
      if (e.contains("detail") && !e["detail"].is_null()) {
        std::string detail =
            e["detail"].is_string()
                ? e["detail"].get<std::string>()
                : e["detail"].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        if (detail.size() > kMaxErrorBodyShown) detail = detail.substr(0, kMaxErrorBodyShown);
        out += " (" + detail + ")";
      }
    }
    if (!out.empty()) return out;
  }
  std::string out;
  for (char c : body.substr(0, kMaxErrorBodyShown)) {
    out.push_back(c == '\n' || c == '\r' || c == '\t'      ? ' '
                  : (static_cast<unsigned char>(c) < 0x20) ? '?'
                                                           : c);
  }
  if (body.size() > kMaxErrorBodyShown) out += "...";
  return "body: " + out;
}

// Turns an unexpected HTTP answer into a Status whose code tells callers whether a retry
// may help: 5xx, 408 and 429 are transient; everything else is not.
Status HttpError(const std::string& host, const std::string& operation,
                 const HttpResponse& response) {
  const long code = response.status;
  const std::string what = "registry " + host + ": " + operation + ": HTTP " +
                           std::to_string(code) + ": " + DescribeBody(response.body);
  if (code == 401) {
    std::string challenge = response.Header("www-authenticate");
    return Status::FailedPrecondition(
        "registry " + host + " requires authentication to " + operation + " (HTTP 401" +
        (challenge.empty() ? "" : ", WWW-Authenticate: " + challenge) +
        "); manifold pushes and pulls anonymously for now, so use a registry or repository "
        "that allows anonymous access. " +
        DescribeBody(response.body));
  }
  if (code == 403) {
    return Status::FailedPrecondition(what + " (access denied)");
  }
  if (code == 404) return Status::NotFound(what);
  if (code == 408 || code == 429 || code >= 500) return Status::Unavailable(what);
  if (code == 400 || code == 413 || code == 415 || code == 422) {
    return Status::InvalidArgument(what);
  }
  if (code == 409 || code == 412) return Status::FailedPrecondition(what);
  return Status::Internal(what + " (unexpected status)");
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

std::string PercentEncodeColon(std::string_view digest) {
  std::string out;
  for (char c : digest) {
    if (c == ':') {
      out += "%3A";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

RegistryClient::RegistryClient(std::string host, RegistryOptions options)
    : host_(std::move(host)), options_(options) {
  const bool plain = options_.plain_http.value_or(IsLoopbackRegistry(host_));
  base_url_ = (plain ? "http://" : "https://") + host_;
}

Result<bool> RegistryClient::BlobExists(std::string_view repository,
                                        std::string_view digest) const {
  const std::string operation =
      "check blob " + std::string(digest) + " in " + std::string(repository);
  if (!IsValidRepository(repository) || !IsValidDigest(digest)) {
    return Status::InvalidArgument("registry " + host_ + ": " + operation +
                                   ": invalid repository name or digest");
  }
  HttpRequest request;
  request.method = "HEAD";
  request.url = base_url_ + "/v2/" + std::string(repository) + "/blobs/" + std::string(digest);
  request.timeout_ms = options_.timeout_ms;
  request.connect_timeout_ms = options_.connect_timeout_ms;
  request.follow_redirects = true;
  Result<HttpResponse> response = http_.Send(request);
  if (!response.ok()) return response.status().WithContext("registry " + host_ + ": " + operation);
  if (response->status == 200) return true;
  if (response->status == 404) return false;
  return HttpError(host_, operation, *response);
}

Status RegistryClient::PushBlob(std::string_view repository, std::string_view digest,
                                std::string_view bytes) const {
  HttpRequest body;
  body.body = std::string(bytes);
  return PushBlobBody(repository, digest, body);
}

Status RegistryClient::PushBlobFromFile(std::string_view repository, std::string_view digest,
                                        int64_t size, const std::string& path) const {
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
  HttpRequest body;
  body.body_file = path;
  return PushBlobBody(repository, digest, body);
}

Status RegistryClient::PushBlobBody(std::string_view repository, std::string_view digest,
                                    const HttpRequest& body) const {
  const std::string repo(repository);
  const std::string operation = "push blob " + std::string(digest) + " to " + repo;
  const std::string context = "registry " + host_ + ": " + operation;
  if (!IsValidRepository(repository)) {
    return Status::InvalidArgument(context + ": invalid repository name \"" + repo + "\"");
  }
  if (!IsValidDigest(digest)) {
    return Status::InvalidArgument(context + ": invalid digest");
  }

  // Open an upload session; the registry answers where to send the data.
  HttpRequest start;
  start.method = "POST";
  start.url = base_url_ + "/v2/" + repo + "/blobs/uploads/";
  start.timeout_ms = options_.timeout_ms;
  start.connect_timeout_ms = options_.connect_timeout_ms;
  Result<HttpResponse> started = http_.Send(start);
  if (!started.ok()) return started.status().WithContext(context);
  if (started->status != 202) return HttpError(host_, operation + " (start upload)", *started);
  std::string location = started->Header("location");
  if (location.empty()) {
    return Status::Internal(context +
                            ": the registry accepted the upload (HTTP 202) but sent "
                            "no Location header to upload to");
  }
  if (location.rfind("http://", 0) != 0 && location.rfind("https://", 0) != 0) {
    if (location.rfind("//", 0) == 0) {
      location = base_url_.substr(0, base_url_.find(':')) + ":" + location;
    } else if (location.front() == '/') {
      location = base_url_ + location;
    } else {
      location = start.url + location;
    }
  }
  // The Location may carry its own query (upload state); keep it and add the digest.
  location += location.find('?') == std::string::npos ? "?" : "&";
  location += "digest=" + PercentEncodeColon(digest);

  HttpRequest put = body;
  put.method = "PUT";
  put.url = location;
  put.headers = {{"Content-Type", "application/octet-stream"}};
  put.timeout_ms = options_.timeout_ms;
  put.connect_timeout_ms = options_.connect_timeout_ms;
  Result<HttpResponse> done = http_.Send(put);
  if (!done.ok()) return done.status().WithContext(context);
  if (done->status != 201) return HttpError(host_, operation, *done);
  std::string stored = done->Header("docker-content-digest");
  if (!stored.empty() && stored != digest) {
    return Status::Internal(context + ": the registry stored the blob as " + stored);
  }
  return Status::Ok();
}

Result<std::string> RegistryClient::PutManifest(std::string_view repository,
                                                std::string_view reference,
                                                std::string_view media_type,
                                                std::string_view bytes) const {
  const std::string repo(repository);
  const std::string ref(reference);
  const std::string operation = "put manifest " + repo + (IsValidDigest(ref) ? "@" : ":") + ref;
  const std::string context = "registry " + host_ + ": " + operation;
  if (!IsValidRepository(repository)) {
    return Status::InvalidArgument(context + ": invalid repository name \"" + repo + "\"");
  }
  if (!IsValidDigest(ref) && !IsValidTag(ref)) {
    return Status::InvalidArgument(context + ": \"" + ref + "\" is neither a tag nor a digest");
  }
  if (media_type.empty()) return Status::InvalidArgument(context + ": no media type given");
  const std::string digest = Sha256Digest(bytes);
  if (IsValidDigest(ref) && ref != digest) {
    return Status::InvalidArgument(context + ": the manifest's bytes have digest " + digest);
  }
  HttpRequest request;
  request.method = "PUT";
  request.url = base_url_ + "/v2/" + repo + "/manifests/" + ref;
  request.headers = {{"Content-Type", std::string(media_type)}};
  request.body = std::string(bytes);
  request.timeout_ms = options_.timeout_ms;
  request.connect_timeout_ms = options_.connect_timeout_ms;
  Result<HttpResponse> response = http_.Send(request);
  if (!response.ok()) return response.status().WithContext(context);
  if (response->status != 201 && response->status != 200) {
    return HttpError(host_, operation, *response);
  }
  std::string stored = response->Header("docker-content-digest");
  if (!stored.empty() && stored != digest) {
    return Status::Internal(context + ": the registry reports digest " + stored +
                            " for bytes whose digest is " + digest +
                            " (did it rewrite the manifest?)");
  }
  return digest;
}

Result<FetchedManifest> RegistryClient::GetManifest(std::string_view repository,
                                                    std::string_view reference) const {
  const std::string repo(repository);
  const std::string ref(reference);
  const std::string operation = "get manifest " + repo + (IsValidDigest(ref) ? "@" : ":") + ref;
  const std::string context = "registry " + host_ + ": " + operation;
  if (!IsValidRepository(repository)) {
    return Status::InvalidArgument(context + ": invalid repository name \"" + repo + "\"");
  }
  if (!IsValidDigest(ref) && !IsValidTag(ref)) {
    return Status::InvalidArgument(context + ": \"" + ref + "\" is neither a tag nor a digest");
  }
  HttpRequest request;
  request.url = base_url_ + "/v2/" + repo + "/manifests/" + ref;
  request.headers = {{"Accept", std::string(kOciIndex) + ", " + std::string(kOciManifest) + ", " +
                                    std::string(kDockerManifestList) + ", " +
                                    std::string(kDockerManifest)}};
  request.timeout_ms = options_.timeout_ms;
  request.connect_timeout_ms = options_.connect_timeout_ms;
  request.max_body_bytes = kMaxManifestBytes;
  Result<HttpResponse> response = http_.Send(request);
  if (!response.ok()) return response.status().WithContext(context);
  if (response->status != 200) return HttpError(host_, operation, *response);

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

Result<std::string> RegistryClient::GetBlob(std::string_view repository,
                                            std::string_view digest) const {
  const std::string operation =
      "get blob " + std::string(digest) + " from " + std::string(repository);
  const std::string context = "registry " + host_ + ": " + operation;
  if (!IsValidRepository(repository) || !IsValidDigest(digest)) {
    return Status::InvalidArgument(context + ": invalid repository name or digest");
  }
  HttpRequest request;
  request.url = base_url_ + "/v2/" + std::string(repository) + "/blobs/" + std::string(digest);
  request.follow_redirects = true;  // registries may send blob reads to their storage
  request.timeout_ms = options_.timeout_ms;
  request.connect_timeout_ms = options_.connect_timeout_ms;
  Result<HttpResponse> response = http_.Send(request);
  if (!response.ok()) return response.status().WithContext(context);
  if (response->status != 200) return HttpError(host_, operation, *response);
  std::string actual = Sha256Digest(response->body);
  if (actual != digest) {
    return Status::Internal(context + ": the content received has digest " + actual);
  }
  return std::move(response->body);
}

Result<Descriptor> RegistryClient::PushLayout(const OciLayoutImage& image,
                                              std::string_view repository, PushStats* stats,
                                              const BlobPushedCallback& on_blob) const {
  const std::string context = "push " + image.descriptor.digest + " from " + image.dir + " to " +
                              host_ + "/" + std::string(repository);
  PushStats local;
  std::vector<const Descriptor*> blobs = {&image.manifest.config};
  for (const Descriptor& layer : image.manifest.layers) blobs.push_back(&layer);
  std::set<std::string> seen;  // an image may list one (e.g. empty) layer several times
  for (const Descriptor* blob : blobs) {
    if (!seen.insert(blob->digest).second) continue;
    Result<bool> exists = BlobExists(repository, blob->digest);
    if (!exists.ok()) return exists.status().WithContext(context);
    if (*exists) {
      ++local.blobs_skipped;
      local.bytes_skipped += blob->size;
    } else {
      Result<std::string> path = LayoutBlobPath(image.dir, blob->digest);
      if (!path.ok()) return path.status().WithContext(context);
      Status s = PushBlobFromFile(repository, blob->digest, blob->size, *path);
      if (!s.ok()) return s.WithContext(context);
      ++local.blobs_pushed;
      local.bytes_pushed += blob->size;
    }
    if (stats != nullptr) *stats = local;
    if (on_blob) on_blob(*blob, *exists);
  }

  Result<std::string> digest = PutManifest(repository, image.descriptor.digest,
                                           image.manifest.media_type, image.manifest_bytes);
  if (!digest.ok()) return digest.status().WithContext(context);

  Descriptor out;
  out.media_type = image.manifest.media_type;
  out.digest = *digest;
  out.size = static_cast<int64_t>(image.manifest_bytes.size());
  // An image without a platform in its config (an artifact) is still pushed; it just has
  // none to report.
  Result<std::string> config =
      ReadLayoutBlob(image.dir, image.manifest.config.digest, image.manifest.config.size);
  if (config.ok()) {
    Result<Platform> platform = ParseImageConfigPlatform(*config);
    if (platform.ok()) out.platform = *platform;
  }
  if (stats != nullptr) *stats = local;
  return out;
}

}  // namespace manifold
