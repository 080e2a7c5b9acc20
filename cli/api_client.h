// ApiClient: the manifold CLI's typed client for the coordinator's HTTP API (docs/API.md).
//
// It turns answers into plain values and every failure into one Status whose message a
// person can act on: an unreachable coordinator names the URL and how to point the CLI
// elsewhere, an unknown build says how to list builds, and a 4xx carries the server's own
// message. The JSON parsers are free functions so that malformed answers are tested
// without a server; they never throw.
//
// Thread-safety: an ApiClient holds its immutable base URLs and credentials, a stateless
// HttpClient and the atomic index of the URL that answered last, so one instance may be
// used from several threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/http_client.h"
#include "common/job_limits.h"
#include "common/status.h"

namespace manifold {

// One job of a build: the work for one platform (see "Build object" in docs/API.md).
struct JobInfo {
  int64_t id = 0;
  std::string platform;
  std::string state;  // pending|assigned|building|pushing|succeeded|failed|canceled
  int64_t attempt = 0;
  std::string agent;
  bool emulated = false;
  std::string placement;  // why the scheduler chose the agent
  std::string manifest_digest;
  std::string manifest_media_type;
  int64_t manifest_size = 0;
  std::string error;
};

// A connected agent as GET /v1/agents describes it.
struct AgentInfo {
  std::string id;
  std::string hostname;
  std::string version;
  std::vector<std::string> platforms;  // "linux/arm64", or "linux/arm64 (emulated)"
  int64_t slots = 0;
  int64_t busy = 0;
  std::string state;  // online | draining
  int64_t last_seen_ms_ago = 0;
  std::string coordinator;  // the coordinator it is connected to (the leader); "" if unsaid
};

struct BuildInfo {
  int64_t id = 0;
  std::string state;  // queued|running|merging|succeeded|failed|canceled
  std::vector<std::string> platforms;
  std::vector<std::string> tags;
  std::string context;
  std::string index_digest;  // empty until the build succeeded
  std::string index_media_type;
  std::string error;
  std::string created_at;
  std::string updated_at;
  std::vector<JobInfo> jobs;

  // succeeded, failed or canceled: nothing will change any more.
  bool IsFinal() const;
};

struct LogChunk {
  int64_t seq = 0;
  std::string platform;
  int64_t attempt = 0;
  std::string data;
};

struct LogPage {
  std::vector<LogChunk> chunks;
  int64_t next = 0;     // the `after` to ask for next
  bool done = false;    // the build is final and every chunk was returned
  bool pruned = false;  // the coordinator deleted the log under its log retention
};

// The body of POST /v1/builds.
struct BuildSubmission {
  std::vector<std::string> platforms;
  std::vector<std::string> tags;
  std::string context;  // digest of an uploaded context tar
  std::string dockerfile;
  std::string dockerfile_path;
  std::map<std::string, std::string> build_args;
  std::string target;
  std::string emulation;  // "" leaves the coordinator's default (fallback)
  std::map<std::string, std::string> labels;
  bool no_cache = false;
  bool pull = false;
  std::map<std::string, std::string> manifest_annotations;
  std::map<std::string, std::string> index_annotations;
  std::string source;    // org.opencontainers.image.source of the index; "" sends none
  std::string revision;  // org.opencontainers.image.revision of the index; "" sends none
  std::map<std::string, std::string> secrets;  // --secret: id -> bytes, sent in base64
  std::string network;                         // "" (default, sent as nothing), none, host
  std::vector<std::string> entitlements;       // --allow
  std::vector<std::string> cache_from;         // --cache-from refs
  std::string cache_to;                        // --cache-to ref; "" sends none
  std::string cache_mode;                      // --cache-to mode; "" sends none
  JobLimits limits;                            // only the fields set are sent
};

std::string BuildSubmissionToJson(const BuildSubmission& request);

// Parsers for the coordinator's answers. Missing optional fields take their defaults;
// a field of the wrong type or a body that is not JSON is an Internal error naming it.
Result<BuildInfo> ParseBuildInfo(std::string_view json);
// Accepts a JSON array of builds or an object {"builds": [...]}.
Result<std::vector<BuildInfo>> ParseBuildList(std::string_view json);
Result<LogPage> ParseLogPage(std::string_view json);
Result<std::vector<AgentInfo>> ParseAgentList(std::string_view json);

// Checks that `url` is an http:// or https:// URL with a host, and returns it without a
// trailing slash so that paths can be appended; several, separated by commas, each so.
Result<std::string> NormalizeServerUrl(std::string_view url);

// How the CLI proves who it is to the coordinator and whom it trusts.
struct ApiAccess {
  std::string token;    // sent as "Authorization: Bearer TOKEN" when set
  std::string ca_file;  // PEM CA certificate(s) trusted for an https:// coordinator
};

// MANIFOLD_TOKEN and MANIFOLD_CA_FILE (the CLI's --token and --ca-file set them).
ApiAccess ApiAccessFromEnvironment();

class ApiClient {
 public:
  // `server` must have passed NormalizeServerUrl: one URL, or several separated by commas
  // (coordinators on one database; each request goes to the one that answered last, or
  // the next that answers).
  explicit ApiClient(std::string server, ApiAccess access = ApiAccessFromEnvironment());

  // The coordinator URL that answered last (the first given, until one did).
  std::string server() const;

  // Whether the coordinator already holds the context with this digest (HEAD).
  Result<bool> HasContext(const std::string& digest) const;
  // PUT of the archive in the open file `archive_fd`, streamed from its start with its size
  // as Content-Length.
  Status UploadContext(const std::string& digest, int archive_fd) const;
  // An empty idempotency key sends no Idempotency-Key header.
  Result<BuildInfo> SubmitBuild(const BuildSubmission& request,
                                const std::string& idempotency_key) const;
  Result<BuildInfo> GetBuild(int64_t id) const;
  // POST /v1/builds/ID/cancel; FailedPrecondition (with the coordinator's reason) when the
  // build is already merging or has ended.
  Result<BuildInfo> CancelBuild(int64_t id) const;
  Result<std::vector<BuildInfo>> ListBuilds(int limit) const;
  Result<std::vector<AgentInfo>> ListAgents() const;
  Result<LogPage> GetLogs(int64_t id, int64_t after) const;

 private:
  // Sends `request`, whose url is a path, to the servers in turn until one answers.
  Result<HttpResponse> Send(HttpRequest request) const;
  // Sends to `server` and maps a transport failure to the "cannot reach the coordinator"
  // message; follows a standby's redirect to the leader.
  Result<HttpResponse> SendTo(const std::string& server, HttpRequest request) const;
  // "METHOD URL" of a request whose url is a path, as sent to server().
  std::string Describe(const HttpRequest& request) const;
  // The error for a non-2xx answer: the server's {"error"} message when it sent one.
  Status ErrorFor(const HttpRequest& request, const HttpResponse& response) const;
  // GetBuild and GetLogs both answer 404 for an unknown build.
  Status UnknownBuild(int64_t id, const HttpResponse& response) const;
  // Sends a request whose 2xx answer is JSON for `parse`; a 404 means no build `build_id`
  // when one is given.
  template <typename T>
  Result<T> Fetch(const HttpRequest& request, std::optional<int64_t> build_id,
                  Result<T> (*parse)(std::string_view)) const;

  std::vector<std::string> servers_;
  mutable std::atomic<size_t> current_{0};  // index into servers_ of the last to answer
  ApiAccess access_;
  HttpClient http_;
};

}  // namespace manifold
