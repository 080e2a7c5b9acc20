#include "common/registry.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "common/digest.h"
#include "common/reference.h"

namespace manifold {
namespace {

constexpr size_t kMaxManifestBytes = size_t{8} << 20;  // registries cap manifests at 4 MiB
constexpr size_t kMaxErrorBodyShown = 512;
// Every manifest type manifold reads, for Accept headers.
const std::string kManifestAccept = std::string(kOciIndex) + ", " + std::string(kOciManifest) +
                                    ", " + std::string(kDockerManifestList) + ", " +
                                    std::string(kDockerManifest);

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

std::string Lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool IsHtmlContentType(const std::string& content_type) {
  const std::string type = Lowercase(content_type);
  return type.rfind("text/html", 0) == 0 || type.rfind("application/xhtml", 0) == 0;
}

// An HTML page's <title>, or "" when the body is not HTML or has none.
std::optional<std::string> HtmlTitle(const std::string& body) {
  const std::string head = Lowercase(body.substr(0, 4096));
  const size_t start = head.find_first_not_of(" \t\r\n");
  if (start == std::string::npos || head[start] != '<' ||
      (head.find("<html") == std::string::npos &&
       head.find("<!doctype html") == std::string::npos)) {
    return std::nullopt;
  }
  const size_t open = head.find("<title>");
  const size_t close = head.find("</title>", open);
  if (open == std::string::npos || close == std::string::npos) return "";
  std::string title = body.substr(open + 7, std::min<size_t>(close - open - 7, 200));
  for (char& c : title) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return title;
}

// A readable excerpt of what the registry said: the Distribution error list when the body
// is one ({"errors":[{"code","message","detail"}]}), a note when it is an HTML page (which
// no registry API sends: something else answered), else the raw body, shortened.
std::string DescribeBody(const std::string& body) {
  if (body.empty()) return "empty body";
  if (std::optional<std::string> title = HtmlTitle(body); title.has_value()) {
    return "an HTML page" + (title->empty() ? "" : " titled \"" + *title + "\"");
  }
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
        what + (challenge.empty() ? "" : " (WWW-Authenticate: " + challenge + ")") +
        "; log in with `manifold login " + host +
        " -u USER --password-stdin` (or docker login) as a user allowed to do this");
  }
  if (code == 403) {
    return Status::FailedPrecondition(what +
                                      " (access denied: the account lacks permission for "
                                      "this repository)");
  }
  if (code == 404) return Status::NotFound(what);
  if (code == 408 || code == 429 || code >= 500) return Status::Unavailable(what);
  if (code == 400 || code == 413 || code == 415 || code == 422) {
    return Status::InvalidArgument(what);
  }
  if (code == 409 || code == 412 || code == 416) return Status::FailedPrecondition(what);
  return Status::Internal(what + " (unexpected status)");
}

bool IsTransientStatus(long code) { return code == 408 || code == 429 || code >= 500; }

// A parsed WWW-Authenticate challenge: `Bearer realm="...",service="...",scope="..."`.
struct Challenge {
  std::string scheme;  // lowercased: "basic", "bearer"
  std::map<std::string, std::string> params;
};

Challenge ParseChallenge(std::string_view text) {
  Challenge out;
  size_t i = 0;
  while (i < text.size() && text[i] == ' ') ++i;
  size_t scheme_end = text.find(' ', i);
  std::string_view scheme = text.substr(
      i, scheme_end == std::string_view::npos ? std::string_view::npos : scheme_end - i);
  for (char c : scheme) {
    out.scheme.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  }
  if (scheme_end == std::string_view::npos) return out;
  i = scheme_end;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == ',')) ++i;
    size_t eq = text.find('=', i);
    if (eq == std::string_view::npos) break;
    std::string key(text.substr(i, eq - i));
    for (char& c : key) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    i = eq + 1;
    std::string value;
    if (i < text.size() && text[i] == '"') {
      ++i;
      while (i < text.size() && text[i] != '"') {
        if (text[i] == '\\' && i + 1 < text.size()) ++i;
        value.push_back(text[i++]);
      }
      ++i;  // closing quote
    } else {
      while (i < text.size() && text[i] != ',') value.push_back(text[i++]);
    }
    out.params[key] = value;
  }
  return out;
}

std::string UrlEncode(std::string_view text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string Join(const std::vector<std::string>& parts, const std::string& separator) {
  std::string out;
  for (const std::string& p : parts) {
    if (!out.empty()) out += separator;
    out += p;
  }
  return out;
}

std::string PullScope(const std::string& repo) { return "repository:" + repo + ":pull"; }
std::string PushScope(const std::string& repo) { return "repository:" + repo + ":pull,push"; }

// The Range header of an upload ("0-1234", or "bytes=0-1234"): the next offset to send.
std::optional<int64_t> NextOffsetFromRange(const std::string& range) {
  std::string_view r = range;
  if (r.rfind("bytes=", 0) == 0) r.remove_prefix(6);
  size_t dash = r.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  std::string end(r.substr(dash + 1));
  if (end.empty() || end.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return std::stoll(end) + 1;
}

std::string ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
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

// A connection that broke during the TLS handshake or right after it (curl's "SSL connect
// error", "Failed sending data to the peer", "Failure when receiving data from the peer"),
// rather than a refused connection, a DNS failure or a timeout.
bool IsTlsSessionFailure(const Status& failure) {
  for (const char* what : {"SSL connect error", "Failed sending data to the peer",
                           "Failure when receiving data from the peer"}) {
    if (failure.message().find(what) != std::string::npos) return true;
  }
  return false;
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
    : host_(std::move(host)), options_(std::move(options)) {
  // docker's certs.d: every *.crt is a CA to trust, every *.cert with its *.key a client
  // identity. A registry with such a directory speaks TLS even on a loopback address.
  const std::string certs = options_.certs_dir.empty() ? "" : options_.certs_dir + "/" + host_;
  std::error_code ec;
  const bool has_certs = !certs.empty() && std::filesystem::is_directory(certs, ec);
  if (has_certs) {
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(certs, ec)) {
      files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      if (file.extension() == ".crt") {
        std::string pem = ReadSmallFile(file.string());
        if (pem.empty()) {
          tls_status_ =
              Status::FailedPrecondition("cannot read the CA certificate " + file.string());
        }
        extra_ca_pem_ += pem;
        if (!pem.empty() && pem.back() != '\n') extra_ca_pem_.push_back('\n');
      } else if (file.extension() == ".cert") {
        std::filesystem::path key = file;
        key.replace_extension(".key");
        if (!std::filesystem::exists(key, ec)) {
          tls_status_ = Status::FailedPrecondition(
              "the client certificate " + file.string() + " has no key " + key.string() +
              " beside it; docker's certs.d layout needs both: put the certificate's private "
              "key (PEM) there, or remove the certificate");
        } else {
          client_cert_ = file.string();
          client_key_ = key.string();
        }
      }
    }
  }
  bool plain = false;
  if (options_.plain_http.has_value()) {
    plain = *options_.plain_http;
  } else {
    plain = std::find(options_.insecure_registries.begin(), options_.insecure_registries.end(),
                      host_) != options_.insecure_registries.end() ||
            (IsLoopbackRegistry(host_) && !has_certs);
  }
  base_url_ = (plain ? "http://" : "https://") + host_;

  if (options_.credentials.has_value()) {
    credentials_ = options_.credentials;
    credentials_source_ = "the credentials given to manifold";
  } else {
    const std::string dir = options_.docker_config_dir.value_or(DockerConfigDir());
    credentials_source_ = dir + "/config.json";
    Result<std::optional<RegistryCredentials>> loaded = LoadRegistryCredentials(dir, host_);
    if (loaded.ok()) {
      credentials_ = *loaded;
    } else {
      credentials_status_ = loaded.status();
    }
  }
}

void RegistryClient::ApplyTls(HttpRequest* request) const {
  request->extra_ca_pem = extra_ca_pem_;
  request->client_cert_file = client_cert_;
  request->client_key_file = client_key_;
  request->timeout_ms = options_.timeout_ms;
  request->connect_timeout_ms = options_.connect_timeout_ms;
}

Status RegistryClient::ExplainTlsFailure(const Status& failure) const {
  const std::string& message = failure.message();
  auto has = [&message](const char* text) { return message.find(text) != std::string::npos; };
  const std::string dir = options_.certs_dir + "/" + host_;
  if (has("wrong version number")) {
    return Status::FailedPrecondition(
        message + "; " + host_ +
        " answered without TLS (plain HTTP?). If it is meant to be used over plain HTTP, "
        "list it as an insecure registry (--insecure-registry " +
        host_ +
        "), knowing that everything sent to it, credentials included, then travels "
        "unencrypted; otherwise check the port");
  }
  if (has("alert") && (has("certificate") || has("unknown ca"))) {
    if (client_cert_.empty()) {
      return Status::FailedPrecondition(
          message +
          "; the registry requires a client certificate (mutual TLS) and none is "
          "configured: put the certificate and its private key (PEM) in " +
          dir + "/ as client.cert and client.key");
    }
    return Status::FailedPrecondition(message + "; the registry refused the client certificate " +
                                      client_cert_ +
                                      " (is it signed by a CA the registry trusts for clients, "
                                      "and still valid?)");
  }
  if (has("local SSL certificate") || has("private key")) {
    return Status::FailedPrecondition(message + "; cannot use the client certificate " +
                                      client_cert_ + " with the key " + client_key_ +
                                      ": both must be PEM and the key must match the "
                                      "certificate");
  }
  if (has("SSL") || has("certificate")) {
    return Status::FailedPrecondition(
        message + "; if the registry uses its own CA, put its certificate in " + dir + "/ca.crt");
  }
  return failure;
}

std::optional<std::string> RegistryClient::CachedAuthorization(const std::string& scope_key) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (basic_ && credentials_.has_value() && !credentials_->username.empty()) {
    return "Basic " + Base64Encode(credentials_->username + ":" + credentials_->password);
  }
  auto it = tokens_.find(scope_key);
  if (it == tokens_.end() || it->second.expires <= std::chrono::steady_clock::now()) {
    return std::nullopt;
  }
  return it->second.header;
}

Status RegistryClient::Authenticate(const std::string& challenge_text,
                                    const std::vector<std::string>& scopes,
                                    const std::string& operation) const {
  const std::string context = "registry " + host_ + ": " + operation;
  if (!credentials_status_.ok()) return credentials_status_.WithContext(context);
  const Challenge challenge = ParseChallenge(challenge_text);
  const bool have_password = credentials_.has_value() && !credentials_->username.empty() &&
                             credentials_->identity_token.empty();
  const std::string login_hint =
      "log in with `manifold login " + host_ + " -u USER --password-stdin` (or docker login)";
  const bool have_identity_token =
      credentials_.has_value() && !credentials_->identity_token.empty();
  if (challenge.scheme == "basic") {
    if (!have_password) {
      return Status::FailedPrecondition(
          context + ": the registry requires a user name and password (HTTP 401, Basic) and " +
          (have_identity_token
               ? "only an identity token (usable with token auth only) is in " + credentials_source_
               : std::string("none is configured")) +
          "; " + login_hint);
    }
    std::lock_guard<std::mutex> lock(mu_);
    basic_ = true;
    return Status::Ok();
  }
  if (challenge.scheme != "bearer") {
    return Status::FailedPrecondition(context + ": the registry asks for authentication \"" +
                                      challenge_text +
                                      "\", which manifold does not support (only Basic and "
                                      "Bearer token auth)");
  }
  auto realm = challenge.params.find("realm");
  if (realm == challenge.params.end() || realm->second.empty()) {
    return Status::FailedPrecondition(context + ": the Bearer challenge \"" + challenge_text +
                                      "\" names no realm to ask for a token");
  }
  // The scopes this operation needs plus any the registry named, asked for in one token.
  std::vector<std::string> wanted = scopes;
  auto scope = challenge.params.find("scope");
  if (scope != challenge.params.end() && !scope->second.empty()) {
    std::istringstream split(scope->second);
    std::string one;
    while (split >> one) {
      if (std::find(wanted.begin(), wanted.end(), one) == wanted.end()) wanted.push_back(one);
    }
  }
  HttpRequest request;
  ApplyTls(&request);
  auto service = challenge.params.find("service");
  const std::string service_param =
      service != challenge.params.end() ? "service=" + UrlEncode(service->second) : "";
  if (have_identity_token) {
    // An identity token is an OAuth2 refresh token, exchanged by a form POST for an
    // access token (the spec's OAuth2 flow, as docker does): scopes space-separated in
    // one field there, where the GET flow repeats the parameter.
    request.method = "POST";
    request.url = realm->second;
    request.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
    request.body = "grant_type=refresh_token&client_id=manifold&refresh_token=" +
                   UrlEncode(credentials_->identity_token) +
                   (service_param.empty() ? "" : "&" + service_param) +
                   (wanted.empty() ? "" : "&scope=" + UrlEncode(Join(wanted, " ")));
  } else {
    std::string query = service_param;
    for (const std::string& s : wanted)
      query += std::string(query.empty() ? "" : "&") + "scope=" + UrlEncode(s);
    request.url =
        realm->second + (realm->second.find('?') == std::string::npos ? "?" : "&") + query;
    if (have_password) {
      request.headers.emplace_back(
          "Authorization",
          "Basic " + Base64Encode(credentials_->username + ":" + credentials_->password));
    }
  }
  request.max_body_bytes = size_t{1} << 20;
  const std::string token_op =
      context + ": get a token from " + realm->second + " for " + Join(wanted, " ");
  Result<HttpResponse> response = SendOnce(RegistryOperation::kToken, request);
  if (!response.ok()) return response.status().WithContext(token_op);
  if (response->status == 401 || response->status == 403) {
    std::string why;
    if (have_identity_token) {
      why = "the identity token for " + host_ + " in " + credentials_source_ +
            " was refused (expired or revoked?); log in again with `docker login " + host_ +
            "`, or replace it with a password: `manifold login " + host_ +
            " -u USER --password-stdin`";
    } else if (credentials_.has_value()) {
      why = "the credentials configured for " + host_ +
            " were refused (wrong user name or password?); " + login_hint;
    } else {
      why = "no credentials are configured for " + host_ + "; " + login_hint;
    }
    return Status::FailedPrecondition(token_op + ": HTTP " + std::to_string(response->status) +
                                      ": " + DescribeBody(response->body) + "; " + why);
  }
  if (response->status != 200) {
    Status s = HttpError(host_, "get a token from " + realm->second, *response);
    return s.WithContext(context);
  }
  nlohmann::json j = nlohmann::json::parse(response->body, nullptr, false);
  std::string token;
  if (!j.is_discarded() && j.is_object()) {
    if (j.contains("token") && j["token"].is_string()) token = j["token"].get<std::string>();
    if (token.empty() && j.contains("access_token") && j["access_token"].is_string()) {
      token = j["access_token"].get<std::string>();
    }
  }
  if (token.empty()) {
    return Status::Internal(token_op + ": the answer holds no \"token\" or \"access_token\" (" +
                            DescribeBody(response->body) + ")");
  }
  // Tokens live 60 s unless the server says otherwise; renew 10 s early so a token never
  // expires between the check and the request.
  long lifetime = 60;
  if (j.contains("expires_in") && j["expires_in"].is_number_integer()) {
    lifetime = std::max<long>(j["expires_in"].get<long>(), 0);
  }
  const auto expires = std::chrono::steady_clock::now() +
                       std::chrono::seconds(std::max<long>(lifetime - 10, lifetime / 2));
  std::lock_guard<std::mutex> lock(mu_);
  tokens_[Join(scopes, " ")] = Token{"Bearer " + token, expires};
  return Status::Ok();
}

std::chrono::milliseconds RegistryClient::Backoff(int attempt, const HttpResponse* response) const {
  const long cap = std::max(options_.max_backoff_ms, 0L);
  if (response != nullptr) {
    std::string after = response->Header("retry-after");
    if (!after.empty() && after.find_first_not_of("0123456789") == std::string::npos &&
        after.size() < 9) {
      return std::chrono::milliseconds(std::min(std::stol(after) * 1000, cap));
    }
  }
  long base = options_.initial_backoff_ms;
  for (int i = 1; i < attempt && base < cap; ++i) base *= 2;
  base = std::min(base, cap);
  // "Equal jitter": half fixed, half random, so clients that failed together spread out.
  thread_local std::mt19937_64 rng(std::random_device{}());
  std::uniform_int_distribution<long> jitter(0, std::max(base / 2, 0L));
  return std::chrono::milliseconds(base - base / 2 + jitter(rng));
}

Result<HttpResponse> RegistryClient::SendOnce(RegistryOperation kind,
                                              const HttpRequest& request) const {
  Result<HttpResponse> response = http_.Send(request);
  if (options_.on_request) options_.on_request(kind, response.ok() ? response->status : 0);
  return response;
}

Result<HttpResponse> RegistryClient::Send(RegistryOperation kind, HttpRequest request,
                                          const std::vector<std::string>& scopes,
                                          const std::string& operation, bool retry,
                                          PushStats* stats) const {
  const std::string context = "registry " + host_ + ": " + operation;
  if (!tls_status_.ok()) return tls_status_.WithContext(context);
  ApplyTls(&request);
  const auto headers = request.headers;
  const std::string scope_key = Join(scopes, " ");
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.retry_budget_ms);
  bool authenticated = false;
  for (int attempt = 1;; ++attempt) {
    request.headers = headers;
    std::optional<std::string> auth = CachedAuthorization(scope_key);
    if (auth.has_value()) request.headers.emplace_back("Authorization", *auth);
    Result<HttpResponse> response = SendOnce(kind, request);
    if (response.ok() && response->status == 401 && !authenticated) {
      Status s = Authenticate(response->Header("www-authenticate"), scopes, operation);
      if (!s.ok()) return s;
      authenticated = true;
      --attempt;  // answering a challenge is not a failed try
      continue;
    }
    if (response.ok() && response->status == 401) {
      // Authenticated and still refused: wrong credentials, or the token lacks a scope
      // because the account lacks a right.
      const std::string challenge = response->Header("www-authenticate");
      const Challenge parsed = ParseChallenge(challenge);
      auto error = parsed.params.find("error");
      std::string who = "anonymous access";
      if (credentials_.has_value() && !credentials_->identity_token.empty()) {
        who = "the identity token in " + credentials_source_;
      } else if (credentials_.has_value() && !credentials_->username.empty()) {
        who = "the user \"" + credentials_->username + "\"";
      }
      bool basic;
      {
        std::lock_guard<std::mutex> lock(mu_);
        basic = basic_;
      }
      std::string why;
      if (basic || scopes.empty()) {
        why = "the registry refused the credentials of " + who +
              " (wrong user name or password?); log in again with `manifold login " + host_ +
              " -u USER --password-stdin`";
      } else {
        why = "the registry's token for " + who + " does not grant " + scope_key +
              " (error: " + (error != parsed.params.end() ? error->second : "none given") +
              "); give that account these rights on the repository (e.g. push), or log in as " +
              "another user with `manifold login " + host_ + "`";
      }
      return Status::FailedPrecondition(context + ": HTTP 401 after authenticating: " +
                                        DescribeBody(response->body) + "; " + why);
    }
    if (!response.ok() && response.status().retryable() && attempt == 1 &&
        base_url_.rfind("https://", 0) == 0 && IsTlsSessionFailure(response.status())) {
      // A registry that refuses the client certificate (or its absence) under TLS 1.3
      // often shows only as a reset; a TLS 1.2 handshake makes it say why.
      HttpRequest probe;
      ApplyTls(&probe);
      probe.url = base_url_ + "/v2/";
      probe.tls_max_1_2 = true;
      probe.timeout_ms = options_.connect_timeout_ms;
      Result<HttpResponse> probed = http_.Send(probe);
      if (!probed.ok() && !probed.status().retryable()) response = probed.status();
    }
    if (!response.ok() && !response.status().retryable()) {
      return ExplainTlsFailure(response.status()).WithContext(context);
    }
    if (response.ok() && response->status >= 200 && response->status < 300 &&
        IsHtmlContentType(response->Header("content-type")) &&
        (response->effective_url.empty() || response->effective_url.rfind(base_url_, 0) == 0)) {
      // A web page where the API should answer (a login portal, a proxy, the wrong
      // port): taking its 200 as the registry's consent would skip blobs or report a
      // push that never happened. Bytes from a blob store a registry redirects to are
      // not judged by their type; their digest is checked instead.
      return Status::FailedPrecondition(
          context + ": HTTP " + std::to_string(response->status) + " with Content-Type " +
          response->Header("content-type") + ", not a registry API answer (" +
          (response->body.empty() ? "no body" : DescribeBody(response->body)) + "); check that " +
          host_ +
          " is the registry's address and not a web site, login page or proxy in front of it");
    }
    const bool transient = !response.ok() || IsTransientStatus(response->status);
    if (!transient) return response;
    const auto wait = Backoff(attempt, response.ok() ? &*response : nullptr);
    if (!retry || attempt >= options_.max_attempts ||
        std::chrono::steady_clock::now() + wait > deadline) {
      if (!response.ok()) {
        return response.status().WithContext(context + " (after " + std::to_string(attempt) +
                                             (attempt == 1 ? " try)" : " tries)"));
      }
      return response;
    }
    if (stats != nullptr) ++stats->requests_retried;
    std::this_thread::sleep_for(wait);
  }
}

std::string RegistryClient::ResolveLocation(const std::string& request_url,
                                            const std::string& location) const {
  if (location.rfind("http://", 0) == 0 || location.rfind("https://", 0) == 0) return location;
  if (location.rfind("//", 0) == 0)
    return base_url_.substr(0, base_url_.find(':')) + ":" + location;
  if (!location.empty() && location.front() == '/') return base_url_ + location;
  // Relative to the request's path (RFC 3986 reference resolution, without dot segments).
  std::string base = request_url.substr(0, request_url.find('?'));
  return base.substr(0, base.rfind('/') + 1) + location;
}

Status RegistryClient::CheckAccess() const {
  HttpRequest request;
  request.url = base_url_ + "/v2/";
  Result<HttpResponse> response =
      Send(RegistryOperation::kPing, request, {}, "check access (GET /v2/)", /*retry=*/true);
  if (!response.ok()) return response.status();
  if (response->status != 200) return HttpError(host_, "check access (GET /v2/)", *response);
  return Status::Ok();
}

Result<std::optional<HttpResponse>> RegistryClient::Head(RegistryOperation kind,
                                                         const std::string& url,
                                                         const std::string& scope,
                                                         const std::string& operation) const {
  HttpRequest request;
  request.method = "HEAD";
  request.url = url;
  // Registries answer 404 for a manifest of a type the client did not say it accepts.
  request.headers = {{"Accept", kManifestAccept}};
  request.follow_redirects = true;
  Result<HttpResponse> response = Send(kind, request, {scope}, operation, /*retry=*/true);
  if (!response.ok()) return response.status();
  if (response->status == 200) return std::optional<HttpResponse>(std::move(*response));
  if (response->status == 404) return std::optional<HttpResponse>();
  return HttpError(host_, operation, *response);
}

Result<bool> RegistryClient::BlobExists(std::string_view repository,
                                        std::string_view digest) const {
  const std::string repo(repository);
  const std::string operation = "check blob " + std::string(digest) + " in " + repo;
  if (!IsValidRepository(repository) || !IsValidDigest(digest)) {
    return Status::InvalidArgument("registry " + host_ + ": " + operation +
                                   ": invalid repository name or digest");
  }
  Result<std::optional<HttpResponse>> found =
      Head(RegistryOperation::kBlobHead,
           base_url_ + "/v2/" + repo + "/blobs/" + std::string(digest), PullScope(repo), operation);
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
  const std::string repo(repository);
  const std::string operation = "check manifest " + repo + "@" + std::string(digest);
  if (!IsValidRepository(repository) || !IsValidDigest(digest)) {
    return Status::InvalidArgument("registry " + host_ + ": " + operation +
                                   ": invalid repository name or digest");
  }
  Result<std::optional<HttpResponse>> response = Head(
      RegistryOperation::kManifestHead,
      base_url_ + "/v2/" + repo + "/manifests/" + std::string(digest), PullScope(repo), operation);
  if (!response.ok()) return response.status();
  if (!response->has_value()) return std::optional<Descriptor>();
  const HttpResponse& answer = **response;
  Descriptor found;
  found.media_type = answer.Header("content-type");
  found.digest = answer.Header("docker-content-digest");
  if (found.digest.empty()) found.digest = std::string(digest);
  if (found.digest != digest) {
    return Status::Internal("registry " + host_ + ": " + operation + ": it answered for " +
                            found.digest);
  }
  const std::string length = answer.Header("content-length");
  char* end = nullptr;
  found.size = std::strtoll(length.c_str(), &end, 10);
  if (length.empty() || *end != '\0' || found.size < 0) {
    return Status::Internal("registry " + host_ + ": " + operation +
                            ": no valid Content-Length in its answer (" + length + ")");
  }
  return std::optional<Descriptor>(std::move(found));
}

Status RegistryClient::PushBlob(std::string_view repository, std::string_view digest,
                                std::string_view bytes, PushStats* stats) const {
  BlobBody body;
  body.memory = bytes;
  body.size = static_cast<int64_t>(bytes.size());
  return PushBlobBody(repository, digest, body, stats);
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
  return PushBlobBody(repository, digest, body, stats);
}

Result<bool> RegistryClient::MountBlob(std::string_view repository, std::string_view digest,
                                       std::string_view from_repository) const {
  const std::string repo(repository);
  const std::string from(from_repository);
  const std::string operation =
      "mount blob " + std::string(digest) + " from " + from + " into " + repo;
  if (!IsValidRepository(repository) || !IsValidRepository(from_repository) ||
      !IsValidDigest(digest)) {
    return Status::InvalidArgument("registry " + host_ + ": " + operation +
                                   ": invalid repository name or digest");
  }
  HttpRequest request;
  request.method = "POST";
  request.url = base_url_ + "/v2/" + repo + "/blobs/uploads/?mount=" + PercentEncodeColon(digest) +
                "&from=" + UrlEncode(from);
  // Pull on the source and push on the target, in one token.
  Result<HttpResponse> response =
      Send(RegistryOperation::kBlobMount, request, {PushScope(repo), PullScope(from)}, operation,
           /*retry=*/true);
  if (!response.ok()) return response.status();
  if (response->status == 201) return true;
  if (response->status != 202) return HttpError(host_, operation, *response);
  // Declined: abandon the upload session it opened instead, so it does not linger.
  std::string location = response->Header("location");
  if (!location.empty()) {
    HttpRequest cancel;
    cancel.method = "DELETE";
    cancel.url = ResolveLocation(request.url, location);
    Send(RegistryOperation::kBlobUploadCancel, cancel, {PushScope(repo)},
         "cancel upload in " + repo, /*retry=*/false);
  }
  return false;
}

Status RegistryClient::PushBlobBody(std::string_view repository, std::string_view digest,
                                    const BlobBody& body, PushStats* stats) const {
  const std::string repo(repository);
  const std::string operation = "push blob " + std::string(digest) + " to " + repo;
  const std::string context = "registry " + host_ + ": " + operation;
  if (!IsValidRepository(repository)) {
    return Status::InvalidArgument(context + ": invalid repository name \"" + repo + "\"");
  }
  if (!IsValidDigest(digest)) {
    return Status::InvalidArgument(context + ": invalid digest");
  }
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.retry_budget_ms);
  for (int attempt = 1;; ++attempt) {
    bool restart = false;
    Status s = UploadOnce(repo, digest, body, operation, stats, &restart);
    if (s.ok() || !restart) return s;
    const auto wait = Backoff(attempt, nullptr);
    if (attempt >= options_.max_attempts || std::chrono::steady_clock::now() + wait > deadline) {
      return s.WithContext("gave up after " + std::to_string(attempt) + " upload sessions");
    }
    if (stats != nullptr) ++stats->uploads_restarted;
    std::this_thread::sleep_for(wait);
  }
}

Status RegistryClient::UploadOnce(const std::string& repo, std::string_view digest,
                                  const BlobBody& body, const std::string& operation,
                                  PushStats* stats, bool* restart) const {
  const std::string context = "registry " + host_ + ": " + operation;
  const std::vector<std::string> scopes = {PushScope(repo)};
  *restart = false;

  // Open an upload session; the registry answers where to send the data.
  HttpRequest start;
  start.method = "POST";
  start.url = base_url_ + "/v2/" + repo + "/blobs/uploads/";
  Result<HttpResponse> started =
      Send(RegistryOperation::kBlobUploadStart, start, scopes, operation + " (start upload)",
           /*retry=*/true, stats);
  if (!started.ok()) {
    *restart = started.status().retryable();
    return started.status();
  }
  if (started->status != 202) {
    *restart = IsTransientStatus(started->status);
    return HttpError(host_, operation + " (start upload)", *started);
  }
  std::string location = started->Header("location");
  if (location.empty()) {
    return Status::Internal(context +
                            ": the registry accepted the upload (HTTP 202) but sent "
                            "no Location header to upload to");
  }
  location = ResolveLocation(start.url, location);

  // Describes a failed request of this session; transient failures restart the session.
  auto failed = [&](const Result<HttpResponse>& r, const std::string& step) -> Status {
    if (!r.ok()) {
      *restart = r.status().retryable();
      return r.status();
    }
    *restart = IsTransientStatus(r->status);
    return HttpError(host_, operation + " (" + step + ")", *r);
  };
  auto report = [&](int64_t done) {
    if (options_.on_upload_progress) options_.on_upload_progress(digest, done, body.size);
  };

  int64_t offset = 0;
  const bool chunked = !body.path.empty() && body.size > options_.chunked_threshold_bytes;
  if (chunked) {
    const std::string min_length = started->Header("oci-chunk-min-length");
    int64_t chunk = std::max<int64_t>(options_.chunk_bytes, 1);
    if (!min_length.empty() && min_length.find_first_not_of("0123456789") == std::string::npos &&
        min_length.size() < 18) {
      chunk = std::max<int64_t>(chunk, std::stoll(min_length));
    }
    int failures = 0;
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.retry_budget_ms);
    while (offset < body.size) {
      const int64_t length = std::min(chunk, body.size - offset);
      HttpRequest patch;
      patch.method = "PATCH";
      patch.url = location;
      patch.body_file = body.path;
      patch.body_file_offset = offset;
      patch.body_file_length = length;
      patch.headers = {
          {"Content-Type", "application/octet-stream"},
          {"Content-Range", std::to_string(offset) + "-" + std::to_string(offset + length - 1)}};
      // Not retried as is: after a dropped connection only the registry knows how much of
      // the chunk it kept, so ask it (below) and continue from there.
      Result<HttpResponse> sent =
          Send(RegistryOperation::kBlobUploadChunk, patch, scopes,
               operation + " (upload chunk at " + std::to_string(offset) + ")",
               /*retry=*/false, stats);
      if (sent.ok() && sent->status == 202) {
        std::string next = sent->Header("location");
        if (!next.empty()) location = ResolveLocation(location, next);
        std::optional<int64_t> confirmed = NextOffsetFromRange(sent->Header("range"));
        offset = confirmed.value_or(offset + length);
        report(offset);
        continue;
      }
      const bool transient =
          !sent.ok() ? sent.status().retryable() : IsTransientStatus(sent->status);
      const auto wait = Backoff(++failures, sent.ok() ? &*sent : nullptr);
      if (!transient || failures >= options_.max_attempts ||
          std::chrono::steady_clock::now() + wait > deadline) {
        return failed(sent, "upload chunk at " + std::to_string(offset));
      }
      std::this_thread::sleep_for(wait);
      // Where does the registry's copy end? GET on the session answers 204 with a Range.
      HttpRequest status;
      status.url = location;
      Result<HttpResponse> state = Send(RegistryOperation::kBlobUploadStatus, status, scopes,
                                        operation + " (upload status)", /*retry=*/true, stats);
      if (!state.ok() || state->status != 204) {
        // The session is gone (the registry restarted without it, or expired it):
        // begin again in a new one.
        return failed(state.ok() && !IsTransientStatus(state->status)
                          ? Result<HttpResponse>(Status::Unavailable(
                                context + ": the upload session was lost (HTTP " +
                                std::to_string(state->status) + " on its status)"))
                          : state,
                      "upload status");
      }
      std::string next = state->Header("location");
      if (!next.empty()) location = ResolveLocation(location, next);
      std::optional<int64_t> confirmed = NextOffsetFromRange(state->Header("range"));
      offset = confirmed.value_or(0);
      if (offset > body.size) offset = 0;
      if (stats != nullptr) ++stats->uploads_resumed;
    }
  }

  // The closing PUT: the whole body for a monolithic upload, nothing after chunks.
  location += location.find('?') == std::string::npos ? "?" : "&";
  location += "digest=" + PercentEncodeColon(digest);
  HttpRequest put;
  put.method = "PUT";
  put.url = location;
  put.headers = {{"Content-Type", "application/octet-stream"}};
  if (!chunked) {
    if (body.path.empty()) {
      put.body = std::string(body.memory);
    } else {
      put.body_file = body.path;
    }
  }
  // Not retried as is: a replayed PUT to a session the registry may have closed; a new
  // session is the safe retry.
  Result<HttpResponse> done =
      Send(RegistryOperation::kBlobUpload, put, scopes, operation, /*retry=*/false, stats);
  if (!done.ok() || done->status != 201) return failed(done, "complete upload");
  report(body.size);
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
  // PUT of the same bytes is idempotent, so it is safe to retry.
  Result<HttpResponse> response =
      Send(RegistryOperation::kManifestPut, request, {PushScope(repo)}, operation, /*retry=*/true);
  if (!response.ok()) return response.status();
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
  request.headers = {{"Accept", kManifestAccept}};
  request.max_body_bytes = kMaxManifestBytes;
  Result<HttpResponse> response =
      Send(RegistryOperation::kManifestGet, request, {PullScope(repo)}, operation, /*retry=*/true);
  if (!response.ok()) return response.status();
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
  Result<HttpResponse> response =
      Send(RegistryOperation::kBlobGet, request, {PullScope(std::string(repository))}, operation,
           /*retry=*/true);
  if (!response.ok()) return response.status();
  if (response->status != 200) return HttpError(host_, operation, *response);
  std::string actual = Sha256Digest(response->body);
  if (actual != digest) {
    return Status::Internal(context + ": the content received has digest " + actual);
  }
  return std::move(response->body);
}

Result<bool> RegistryClient::EnsureBlob(std::string_view repository, const Descriptor& blob,
                                        std::string_view mount_from,
                                        const std::function<Status()>& upload,
                                        PushStats* stats) const {
  Result<bool> exists = BlobExists(repository, blob.digest);
  if (!exists.ok()) return exists.status();
  if (*exists) {
    ++stats->blobs_skipped;
    stats->bytes_skipped += blob.size;
    return false;
  }
  if (!mount_from.empty() && mount_from != repository) {
    Result<bool> mounted = MountBlob(repository, blob.digest, mount_from);
    if (!mounted.ok()) return mounted.status();
    if (*mounted) {
      ++stats->blobs_mounted;
      stats->bytes_mounted += blob.size;
      return false;
    }
  }
  Status s = upload();
  if (!s.ok()) return s;
  ++stats->blobs_pushed;
  stats->bytes_pushed += blob.size;
  return true;
}

Result<Descriptor> RegistryClient::PushLayout(const OciLayoutImage& image,
                                              std::string_view repository, PushStats* stats,
                                              const BlobPushedCallback& on_blob,
                                              std::string_view mount_from) const {
  const std::string context = "push " + image.descriptor.digest + " from " + image.dir + " to " +
                              host_ + "/" + std::string(repository);
  PushStats local;
  std::vector<const Descriptor*> blobs = {&image.manifest.config};
  for (const Descriptor& layer : image.manifest.layers) blobs.push_back(&layer);
  std::set<std::string> seen;  // an image may list one (e.g. empty) layer several times
  for (const Descriptor* blob : blobs) {
    if (!seen.insert(blob->digest).second) continue;
    Result<bool> uploaded = EnsureBlob(
        repository, *blob, mount_from,
        [&]() -> Status {
          Result<std::string> path = LayoutBlobPath(image.dir, blob->digest);
          if (!path.ok()) return path.status();
          return PushBlobFromFile(repository, blob->digest, blob->size, *path, &local);
        },
        &local);
    if (!uploaded.ok()) return uploaded.status().WithContext(context);
    if (stats != nullptr) *stats = local;
    if (on_blob) on_blob(*blob, !*uploaded);
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

Status RegistryClient::CopyImage(std::string_view from, std::string_view to,
                                 std::string_view digest, PushStats* stats) const {
  const std::string context = "registry " + host_ + ": copy " + std::string(from) + "@" +
                              std::string(digest) + " into " + std::string(to);
  Result<bool> present = ManifestExists(to, digest);
  if (!present.ok()) return present.status().WithContext(context);
  if (*present) return Status::Ok();
  Result<FetchedManifest> fetched = GetManifest(from, digest);
  if (!fetched.ok()) return fetched.status().WithContext(context);
  if (!IsManifestMediaType(fetched->media_type)) {
    return Status::InvalidArgument(context + ": it is a " + fetched->media_type +
                                   ", not a single-platform image manifest");
  }
  Result<Manifest> manifest = ParseManifest(fetched->bytes);
  if (!manifest.ok()) return manifest.status().WithContext(context);
  PushStats local;
  std::vector<Descriptor> blobs = {manifest->config};
  blobs.insert(blobs.end(), manifest->layers.begin(), manifest->layers.end());
  std::set<std::string> seen;
  for (const Descriptor& blob : blobs) {
    if (!seen.insert(blob.digest).second) continue;
    // A registry that declines mounts gets the blob through memory: copies are of images
    // already pushed, which the index merge handles as a fallback, not the bulk path.
    Result<bool> uploaded = EnsureBlob(
        to, blob, from,
        [&]() -> Status {
          Result<std::string> bytes = GetBlob(from, blob.digest);
          if (!bytes.ok()) return bytes.status();
          return PushBlob(to, blob.digest, *bytes, &local);
        },
        &local);
    if (!uploaded.ok()) return uploaded.status().WithContext(context);
  }
  Result<std::string> put = PutManifest(to, digest, fetched->media_type, fetched->bytes);
  if (stats != nullptr) *stats = local;
  return put.ok() ? Status::Ok() : put.status().WithContext(context);
}

}  // namespace manifold
