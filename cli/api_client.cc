#include "cli/api_client.h"

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/ca_bundle.h"
#include "common/docker_config.h"

namespace manifold {
namespace {

using nlohmann::json;

// Field readers that never throw: the coordinator may be a different version, or not a
// coordinator at all, and a wrong answer must become an error message, not a crash.
Status ReadString(const json& object, const char* key, std::string* out) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return Status::Ok();
  if (!it->is_string())
    return Status::Internal(std::string("field \"") + key + "\" is not a string");
  *out = it->get<std::string>();
  return Status::Ok();
}

Status ReadInt(const json& object, const char* key, int64_t* out) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return Status::Ok();
  if (!it->is_number_integer()) {
    return Status::Internal(std::string("field \"") + key + "\" is not an integer");
  }
  *out = it->get<int64_t>();
  return Status::Ok();
}

Status ReadBool(const json& object, const char* key, bool* out) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return Status::Ok();
  if (!it->is_boolean())
    return Status::Internal(std::string("field \"") + key + "\" is not a boolean");
  *out = it->get<bool>();
  return Status::Ok();
}

Status ReadStrings(const json& object, const char* key, std::vector<std::string>* out) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return Status::Ok();
  if (!it->is_array()) return Status::Internal(std::string("field \"") + key + "\" is not a list");
  for (const json& item : *it) {
    if (!item.is_string()) {
      return Status::Internal(std::string("field \"") + key + "\" holds a non-string");
    }
    out->push_back(item.get<std::string>());
  }
  return Status::Ok();
}

// Runs each read in turn and stops at the first error.
#define MANIFOLD_READ(expr)                    \
  do {                                         \
    Status read_status = (expr);               \
    if (!read_status.ok()) return read_status; \
  } while (0)

Status ParseJob(const json& j, JobInfo* job) {
  if (!j.is_object()) return Status::Internal("a job is not a JSON object");
  MANIFOLD_READ(ReadInt(j, "id", &job->id));
  MANIFOLD_READ(ReadString(j, "platform", &job->platform));
  MANIFOLD_READ(ReadString(j, "state", &job->state));
  MANIFOLD_READ(ReadInt(j, "attempt", &job->attempt));
  MANIFOLD_READ(ReadString(j, "agent", &job->agent));
  MANIFOLD_READ(ReadBool(j, "emulated", &job->emulated));
  MANIFOLD_READ(ReadString(j, "placement", &job->placement));
  MANIFOLD_READ(ReadString(j, "manifest_digest", &job->manifest_digest));
  MANIFOLD_READ(ReadString(j, "manifest_media_type", &job->manifest_media_type));
  MANIFOLD_READ(ReadInt(j, "manifest_size", &job->manifest_size));
  MANIFOLD_READ(ReadString(j, "error", &job->error));
  return Status::Ok();
}

Status ParseBuild(const json& j, BuildInfo* build) {
  if (!j.is_object()) return Status::Internal("a build is not a JSON object");
  MANIFOLD_READ(ReadInt(j, "id", &build->id));
  MANIFOLD_READ(ReadString(j, "state", &build->state));
  MANIFOLD_READ(ReadStrings(j, "platforms", &build->platforms));
  MANIFOLD_READ(ReadStrings(j, "tags", &build->tags));
  MANIFOLD_READ(ReadString(j, "context", &build->context));
  MANIFOLD_READ(ReadString(j, "index_digest", &build->index_digest));
  MANIFOLD_READ(ReadString(j, "index_media_type", &build->index_media_type));
  MANIFOLD_READ(ReadString(j, "error", &build->error));
  MANIFOLD_READ(ReadString(j, "created_at", &build->created_at));
  MANIFOLD_READ(ReadString(j, "updated_at", &build->updated_at));
  auto jobs = j.find("jobs");
  if (jobs != j.end() && !jobs->is_null()) {
    if (!jobs->is_array()) return Status::Internal("field \"jobs\" is not a list");
    for (const json& item : *jobs) {
      JobInfo job;
      MANIFOLD_READ(ParseJob(item, &job));
      build->jobs.push_back(std::move(job));
    }
  }
  if (build->id <= 0) return Status::Internal("the build has no \"id\"");
  return Status::Ok();
}

Status ParseChunk(const json& j, LogChunk* chunk) {
  if (!j.is_object()) return Status::Internal("a log chunk is not a JSON object");
  MANIFOLD_READ(ReadInt(j, "seq", &chunk->seq));
  MANIFOLD_READ(ReadString(j, "platform", &chunk->platform));
  MANIFOLD_READ(ReadInt(j, "attempt", &chunk->attempt));
  MANIFOLD_READ(ReadString(j, "data", &chunk->data));
  return Status::Ok();
}

Status ParseAgent(const json& j, AgentInfo* agent) {
  if (!j.is_object()) return Status::Internal("an agent is not a JSON object");
  MANIFOLD_READ(ReadString(j, "id", &agent->id));
  MANIFOLD_READ(ReadString(j, "hostname", &agent->hostname));
  MANIFOLD_READ(ReadString(j, "version", &agent->version));
  MANIFOLD_READ(ReadInt(j, "slots", &agent->slots));
  MANIFOLD_READ(ReadInt(j, "busy", &agent->busy));
  MANIFOLD_READ(ReadString(j, "state", &agent->state));
  MANIFOLD_READ(ReadInt(j, "last_seen_ms_ago", &agent->last_seen_ms_ago));
  auto platforms = j.find("platforms");
  if (platforms == j.end() || !platforms->is_array()) {
    return Status::Internal("field \"platforms\" is not a list");
  }
  for (const json& offer : *platforms) {
    std::string platform;
    bool emulated = false;
    if (!offer.is_object()) return Status::Internal("a platform offer is not a JSON object");
    MANIFOLD_READ(ReadString(offer, "platform", &platform));
    MANIFOLD_READ(ReadBool(offer, "emulated", &emulated));
    agent->platforms.push_back(platform + (emulated ? " (emulated)" : ""));
  }
  return Status::Ok();
}

#undef MANIFOLD_READ

// The coordinator answers JSON; anything else (an HTML error page from a proxy, a
// truncated body) is reported with where it came from.
Result<json> ParseJson(std::string_view text) {
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return Status::Internal("the answer is not JSON");
  return parsed;
}

// The server's {"error": "..."} message, or "" when the body does not carry one.
std::string ServerErrorMessage(const std::string& body) {
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object()) {
    auto it = parsed.find("error");
    if (it != parsed.end() && it->is_string()) return it->get<std::string>();
  }
  return "";
}

bool IsSuccess(long status) { return status >= 200 && status < 300; }

bool Contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

// "HOST" of "https://HOST:PORT" (an IPv6 address keeps its brackets).
std::string HostOf(const std::string& server) {
  std::string authority = server.substr(server.find("://") + 3);
  authority = authority.substr(0, authority.find('/'));
  size_t port = authority.rfind(':');
  if (port != std::string::npos && authority.find(']', port) == std::string::npos) {
    authority.erase(port);
  }
  return authority;
}

// What to do about a certificate curl refused (`reason`, OpenSSL's words through curl).
std::string CertificateAdvice(const std::string& server, const std::string& reason,
                              const std::string& ca_file) {
  if (Contains(reason, "does not match target host name") ||
      Contains(reason, "no alternative certificate subject name matches")) {
    const std::string host = HostOf(server);
    return "The certificate must carry the host name " + host +
           " among its subject alternative names: reach the coordinator by a name its "
           "certificate (--tls-cert) carries, or give it a certificate for " +
           host + ".";
  }
  if (ca_file.empty()) {
    return "If its certificate comes from your own CA, pass that CA with --ca-file or "
           "MANIFOLD_CA_FILE.";
  }
  if (Contains(reason, "unable to get local issuer certificate") ||
      Contains(reason, "self-signed certificate") || Contains(reason, "self signed certificate") ||
      Contains(reason, "unable to verify the first certificate")) {
    return "The certificate is not signed by the CA in " + ca_file +
           " (--ca-file or MANIFOLD_CA_FILE): pass the CA that signed the coordinator's "
           "certificate (its --tls-cert).";
  }
  return "";
}

// A coordinator serving HTTPS (--tls-cert) drops a plain HTTP request without a word (curl:
// "Empty reply from server"), or answers it with a TLS alert, which curl reads as HTTP/0.9.
bool AnsweredLikeTls(const std::string& reason) {
  return Contains(reason, "Empty reply from server") ||
         Contains(reason, "Server returned nothing") || Contains(reason, "HTTP/0.9");
}

}  // namespace

bool BuildInfo::IsFinal() const {
  return state == "succeeded" || state == "failed" || state == "canceled";
}

std::string BuildSubmissionToJson(const BuildSubmission& request) {
  json body = {
      {"platforms", request.platforms},
      {"tags", request.tags},
      {"context", request.context},
      {"dockerfile", request.dockerfile},
      {"dockerfile_path", request.dockerfile_path},
      {"build_args", json::object()},
      {"target", request.target},
  };
  for (const auto& [key, value] : request.build_args) body["build_args"][key] = value;
  if (!request.emulation.empty()) body["emulation"] = request.emulation;
  // The newer options are sent only when used, so that a plain build stays readable by a
  // coordinator that predates them.
  for (const auto& [key, value] : request.labels) body["labels"][key] = value;
  for (const auto& [key, value] : request.manifest_annotations) {
    body["manifest_annotations"][key] = value;
  }
  for (const auto& [key, value] : request.index_annotations) body["index_annotations"][key] = value;
  if (request.no_cache) body["no_cache"] = true;
  if (request.pull) body["pull"] = true;
  if (!request.source.empty()) body["source"] = request.source;
  if (!request.revision.empty()) body["revision"] = request.revision;
  for (const auto& [id, bytes] : request.secrets) body["secrets"][id] = Base64Encode(bytes);
  if (!request.network.empty()) body["network"] = request.network;
  if (!request.entitlements.empty()) body["entitlements"] = request.entitlements;
  if (!request.cache_from.empty()) body["cache_from"] = request.cache_from;
  if (!request.cache_to.empty()) body["cache_to"] = request.cache_to;
  if (!request.cache_mode.empty()) body["cache_mode"] = request.cache_mode;
  const std::pair<const char*, uint64_t> limits[] = {{"memory_bytes", request.limits.memory_bytes},
                                                     {"cpu_millis", request.limits.cpu_millis},
                                                     {"pids", request.limits.pids},
                                                     {"disk_bytes", request.limits.disk_bytes}};
  for (const auto& [key, value] : limits) {
    if (value != 0) body["limits"][key] = value;
  }
  // Replacing invalid UTF-8 keeps a Dockerfile or build arg in another encoding from
  // making dump() throw; the coordinator then sees U+FFFD where the odd bytes were.
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<BuildInfo> ParseBuildInfo(std::string_view text) {
  Result<json> parsed = ParseJson(text);
  if (!parsed.ok()) return parsed.status();
  BuildInfo build;
  Status status = ParseBuild(*parsed, &build);
  if (!status.ok()) return status;
  return build;
}

Result<std::vector<BuildInfo>> ParseBuildList(std::string_view text) {
  Result<json> parsed = ParseJson(text);
  if (!parsed.ok()) return parsed.status();
  const json* list = &*parsed;
  if (parsed->is_object()) {
    auto it = parsed->find("builds");
    if (it == parsed->end()) return Status::Internal("the answer has no \"builds\" list");
    list = &*it;
  }
  if (!list->is_array()) return Status::Internal("the build list is not a JSON list");
  std::vector<BuildInfo> builds;
  for (const json& item : *list) {
    BuildInfo build;
    Status status = ParseBuild(item, &build);
    if (!status.ok()) return status;
    builds.push_back(std::move(build));
  }
  return builds;
}

Result<std::vector<AgentInfo>> ParseAgentList(std::string_view text) {
  Result<json> parsed = ParseJson(text);
  if (!parsed.ok()) return parsed.status();
  auto list = parsed->is_object() ? parsed->find("agents") : parsed->end();
  if (list == parsed->end() || !list->is_array()) {
    return Status::Internal("the answer has no \"agents\" list");
  }
  // One coordinator answers for all of them: the one they are connected to.
  auto coordinator = parsed->find("coordinator");
  std::vector<AgentInfo> agents;
  for (const json& item : *list) {
    AgentInfo agent;
    Status status = ParseAgent(item, &agent);
    if (!status.ok()) return status;
    if (coordinator != parsed->end() && coordinator->is_string()) {
      agent.coordinator = coordinator->get<std::string>();
    }
    agents.push_back(std::move(agent));
  }
  return agents;
}

Result<LogPage> ParseLogPage(std::string_view text) {
  Result<json> parsed = ParseJson(text);
  if (!parsed.ok()) return parsed.status();
  const json& j = *parsed;
  if (!j.is_object()) return Status::Internal("the log answer is not a JSON object");
  LogPage page;
  Status status = ReadInt(j, "next", &page.next);
  if (status.ok()) status = ReadBool(j, "done", &page.done);
  if (status.ok()) status = ReadBool(j, "pruned", &page.pruned);
  if (!status.ok()) return status;
  auto chunks = j.find("chunks");
  if (chunks != j.end() && !chunks->is_null()) {
    if (!chunks->is_array()) return Status::Internal("field \"chunks\" is not a list");
    for (const json& item : *chunks) {
      LogChunk chunk;
      status = ParseChunk(item, &chunk);
      if (!status.ok()) return status;
      page.chunks.push_back(std::move(chunk));
    }
  }
  return page;
}

Result<std::string> NormalizeServerUrl(std::string_view url) {
  if (size_t comma = url.find(','); comma != std::string_view::npos) {
    Result<std::string> first = NormalizeServerUrl(url.substr(0, comma));
    if (!first.ok()) return first.status();
    Result<std::string> rest = NormalizeServerUrl(url.substr(comma + 1));
    if (!rest.ok()) return rest.status();
    return *first + "," + *rest;
  }
  std::string text(url);
  while (!text.empty() && text.front() == ' ') text.erase(0, 1);
  while (!text.empty() && text.back() == ' ') text.pop_back();
  auto invalid = [&text]() {
    return Status::InvalidArgument("invalid coordinator URL \"" + text +
                                   "\": use http://HOST:PORT, e.g. http://127.0.0.1:7080");
  };
  size_t scheme_end = text.find("://");
  if (scheme_end == std::string::npos) return invalid();
  std::string scheme = text.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") return invalid();
  std::string rest = text.substr(scheme_end + 3);
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty() || rest.front() == '/' || rest.find_first_of(" \t\r\n?#") != std::string::npos) {
    return invalid();
  }
  return scheme + "://" + rest;
}

ApiAccess ApiAccessFromEnvironment() {
  ApiAccess access;
  if (const char* token = std::getenv("MANIFOLD_TOKEN")) access.token = token;
  if (const char* ca_file = std::getenv("MANIFOLD_CA_FILE")) access.ca_file = ca_file;
  return access;
}

ApiClient::ApiClient(std::string server, ApiAccess access) : access_(std::move(access)) {
  for (size_t start = 0; start <= server.size();) {
    size_t comma = std::min(server.find(',', start), server.size());
    servers_.push_back(server.substr(start, comma - start));
    start = comma + 1;
  }
}

std::string ApiClient::server() const { return servers_[current_ % servers_.size()]; }

std::string ApiClient::Describe(const HttpRequest& request) const {
  HttpRequest sent = request;
  sent.url = server() + request.url;
  return DescribeRequest(sent);
}

Result<HttpResponse> ApiClient::Send(HttpRequest request) const {
  // Several coordinators (--server A,B): the one that answered last first, then the
  // others, until one answers; any of them serves the API (docs/API.md).
  const std::string path = request.url;
  const size_t first = current_;
  Result<HttpResponse> answered = Status::Internal("no coordinator URL");
  for (size_t i = 0; i < servers_.size(); ++i) {
    const size_t at = (first + i) % servers_.size();
    request.url = servers_[at] + path;
    answered = SendTo(servers_[at], request);
    if (answered.ok() || !answered.status().retryable()) {
      current_ = at;
      return answered;
    }
  }
  return answered;
}

Result<HttpResponse> ApiClient::SendTo(const std::string& server, HttpRequest request) const {
  if (!access_.token.empty()) {
    request.headers.emplace_back("Authorization", "Bearer " + access_.token);
  }
  if (!access_.ca_file.empty()) {
    Result<std::string> pem = ReadCaBundle(access_.ca_file, "--ca-file or MANIFOLD_CA_FILE");
    if (!pem.ok()) return pem.status();
    request.extra_ca_pem = *pem;
  }
  Result<HttpResponse> response = http_.Send(request);
  if (!response.ok()) {
    // The transport error repeats the URL ("GET http://... failed: reason"); the messages
    // below name the server already, so keep only the reason when it has that shape.
    std::string reason = response.status().message();
    std::string prefix = DescribeRequest(request) + " failed: ";
    if (reason.starts_with(prefix)) reason.erase(0, prefix.size());
    if (server.starts_with("https://") && Contains(reason, "certificate")) {
      std::string advice = CertificateAdvice(server, reason, access_.ca_file);
      return Status::Unavailable("cannot verify the TLS certificate of the coordinator at " +
                                 server + ": " + reason + "." +
                                 (advice.empty() ? "" : " " + advice));
    }
    if (server.starts_with("http://") && AnsweredLikeTls(reason)) {
      // Still Unavailable: a coordinator that stopped mid-request answers nothing too.
      return Status::Unavailable("the coordinator at " + server + " gave no HTTP answer: " +
                                 reason + ". It probably serves HTTPS (--tls-cert): use https://" +
                                 server.substr(7) + " with --server or MANIFOLD_SERVER.");
    }
    return Status::Unavailable("cannot reach the coordinator at " + server + ": " + reason +
                               ". Is it running? Set --server or MANIFOLD_SERVER.");
  }
  // A standby coordinator sends what only the leader answers to the leader (docs/API.md,
  // "Several coordinators"). Followed here, once, rather than by curl, which would drop
  // the token on the way to another host.
  const std::string leader = response->Header("Location");
  if (response->status == 307 && !leader.empty() && request.body_fd < 0 &&
      request.body_file.empty() &&
      (leader.starts_with("http://") || leader.starts_with("https://"))) {
    request.url = leader;
    Result<HttpResponse> answered = http_.Send(request);
    if (!answered.ok()) {
      return Status::Unavailable("the coordinator at " + server +
                                 " does not lead and sent this request to the leader, but " +
                                 answered.status().message());
    }
    return answered;
  }
  return response;
}

Status ApiClient::ErrorFor(const HttpRequest& request, const HttpResponse& response) const {
  std::string message = ServerErrorMessage(response.body);
  if (message.empty()) {
    message = "the coordinator at " + server() + " answered HTTP " +
              std::to_string(response.status) + " to " + Describe(request);
  }
  switch (response.status) {
    case 400:
    case 413:
    case 422:
      return Status::InvalidArgument(message);
    case 401:
      return Status::FailedPrecondition("the coordinator at " + server() +
                                        " refused the request (HTTP 401): " + message);
    case 404:
      return Status::NotFound(message);
    case 409:
      return Status::FailedPrecondition(message);
    default:
      break;
  }
  if (response.status >= 500) return Status::Unavailable(message);
  return Status::Internal(message);
}

Status ApiClient::UnknownBuild(int64_t id, const HttpResponse& response) const {
  // The coordinator says more than "no build N" when it knows why (deleted under its
  // --retention); that reason is the answer.
  std::string message = ServerErrorMessage(response.body);
  if (!message.empty() && !message.starts_with("no build " + std::to_string(id))) {
    return Status::NotFound(message);
  }
  return Status::NotFound("no build " + std::to_string(id) + " on the coordinator at " + server() +
                          " (list builds with `manifold ls`)");
}

template <typename T>
Result<T> ApiClient::Fetch(const HttpRequest& request, std::optional<int64_t> build_id,
                           Result<T> (*parse)(std::string_view)) const {
  Result<HttpResponse> response = Send(request);
  if (!response.ok()) return response.status();
  if (build_id && response->status == 404) return UnknownBuild(*build_id, *response);
  if (!IsSuccess(response->status)) return ErrorFor(request, *response);
  Result<T> parsed = parse(response->body);
  if (!parsed.ok()) {
    return parsed.status().WithContext("unexpected answer from the coordinator at " + server() +
                                       " to " + Describe(request));
  }
  return parsed;
}

Result<bool> ApiClient::HasContext(const std::string& digest) const {
  HttpRequest request;
  request.method = "HEAD";
  request.url = "/v1/contexts/" + digest;
  request.timeout_ms = 30000;
  Result<HttpResponse> response = Send(request);
  if (!response.ok()) return response.status();
  if (response->status == 404) return false;
  if (IsSuccess(response->status)) return true;
  return ErrorFor(request, *response);
}

Status ApiClient::UploadContext(const std::string& digest, int archive_fd) const {
  HttpRequest request;
  request.method = "PUT";
  request.url = "/v1/contexts/" + digest;
  request.headers = {{"Content-Type", "application/x-tar"}};
  request.body_fd = archive_fd;
  request.timeout_ms = 0;  // a large context over a slow link may take long; only stalls fail
  Result<HttpResponse> response = Send(request);
  if (!response.ok()) return response.status();
  if (IsSuccess(response->status)) return Status::Ok();
  return ErrorFor(request, *response).WithContext("uploading the build context");
}

Result<BuildInfo> ApiClient::SubmitBuild(const BuildSubmission& build,
                                         const std::string& idempotency_key) const {
  HttpRequest request;
  request.method = "POST";
  request.url = "/v1/builds";
  request.headers = {{"Content-Type", "application/json"}};
  if (!idempotency_key.empty()) request.headers.emplace_back("Idempotency-Key", idempotency_key);
  request.body = BuildSubmissionToJson(build);
  request.timeout_ms = 60000;
  return Fetch<BuildInfo>(request, std::nullopt, ParseBuildInfo);
}

Result<BuildInfo> ApiClient::GetBuild(int64_t id) const {
  HttpRequest request;
  request.url = "/v1/builds/" + std::to_string(id);
  request.timeout_ms = 30000;
  return Fetch<BuildInfo>(request, id, ParseBuildInfo);
}

Result<BuildInfo> ApiClient::CancelBuild(int64_t id) const {
  HttpRequest request;
  request.method = "POST";
  request.url = "/v1/builds/" + std::to_string(id) + "/cancel";
  request.timeout_ms = 30000;
  return Fetch<BuildInfo>(request, id, ParseBuildInfo);
}

Result<std::vector<BuildInfo>> ApiClient::ListBuilds(int limit) const {
  HttpRequest request;
  request.url = "/v1/builds?limit=" + std::to_string(limit);
  request.timeout_ms = 30000;
  return Fetch<std::vector<BuildInfo>>(request, std::nullopt, ParseBuildList);
}

Result<std::vector<AgentInfo>> ApiClient::ListAgents() const {
  HttpRequest request;
  request.url = "/v1/agents";
  request.timeout_ms = 30000;
  return Fetch<std::vector<AgentInfo>>(request, std::nullopt, ParseAgentList);
}

Result<LogPage> ApiClient::GetLogs(int64_t id, int64_t after) const {
  HttpRequest request;
  request.url = "/v1/builds/" + std::to_string(id) + "/logs?after=" + std::to_string(after);
  request.timeout_ms = 30000;
  return Fetch<LogPage>(request, id, ParseLogPage);
}

}  // namespace manifold
