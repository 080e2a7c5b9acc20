#include "common/blob_upload.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "common/registry_auth.h"
#include "common/registry_errors.h"

namespace manifold {
namespace {

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

// The retry bounds of one blob upload, for its resumed chunks and restarted sessions
// together: max_attempts tries and retry_budget_ms (RegistryOptions), counted afresh from
// each chunk that made progress. A long upload on a slow link is not one failing request,
// so a transient error near its end gets the same tries as one at its start.
class UploadBudget {
 public:
  explicit UploadBudget(const RegistryTransport& transport) : transport_(transport) { Renew(); }

  // A chunk made progress.
  void Renew() {
    failures_ = 0;
    deadline_ = std::chrono::steady_clock::now() +
                std::chrono::milliseconds(transport_.options().retry_budget_ms);
  }

  // Counts a failure (after `response`, may be null): the back-off before the next try, or
  // nullopt when the budget is spent.
  std::optional<std::chrono::milliseconds> NextTry(const HttpResponse* response) {
    const auto wait = transport_.Backoff(++failures_, response);
    if (failures_ >= transport_.options().max_attempts ||
        std::chrono::steady_clock::now() + wait > deadline_) {
      return std::nullopt;
    }
    return wait;
  }

 private:
  const RegistryTransport& transport_;
  int failures_ = 0;
  std::chrono::steady_clock::time_point deadline_;
};

// One upload session from POST to the closing PUT, within `budget`. Sets *restart when a
// new session may succeed where this one failed.
Status UploadOnce(const RegistryTransport& transport, const std::string& repo,
                  std::string_view digest, const BlobBody& body, const std::string& operation,
                  UploadBudget& budget, PushStats* stats, bool* restart) {
  const std::string context = "registry " + transport.host() + ": " + operation;
  const std::vector<std::string> scopes = {PushScope(repo)};
  *restart = false;

  // Open an upload session; the registry answers where to send the data.
  HttpRequest start;
  start.method = "POST";
  start.url = transport.base_url() + "/v2/" + repo + "/blobs/uploads/";
  Result<HttpResponse> started = transport.Send(RegistryOperation::kBlobUploadStart, start, scopes,
                                                operation + " (start upload)",
                                                /*retry=*/true, stats);
  if (!started.ok()) {
    *restart = started.status().retryable();
    return started.status();
  }
  if (started->status != 202) {
    *restart = IsTransientHttpStatus(started->status);
    return RegistryHttpError(transport.host(), operation + " (start upload)", *started);
  }
  std::string location = started->Header("location");
  if (location.empty()) {
    return Status::Internal(context +
                            ": the registry accepted the upload (HTTP 202) but sent "
                            "no Location header to upload to");
  }
  location = transport.ResolveLocation(start.url, location);

  // Describes a failed request of this session; transient failures restart the session.
  auto failed = [&](const Result<HttpResponse>& r, const std::string& step) -> Status {
    if (!r.ok()) {
      *restart = r.status().retryable();
      return r.status();
    }
    *restart = IsTransientHttpStatus(r->status);
    return RegistryHttpError(transport.host(), operation + " (" + step + ")", *r);
  };
  auto report = [&](int64_t done) {
    if (transport.options().on_upload_progress)
      transport.options().on_upload_progress(digest, done, body.size);
  };

  int64_t offset = 0;
  const bool chunked =
      !body.path.empty() && body.size > transport.options().chunked_threshold_bytes;
  if (chunked) {
    const std::string min_length = started->Header("oci-chunk-min-length");
    int64_t chunk = std::max<int64_t>(transport.options().chunk_bytes, 1);
    if (!min_length.empty() && min_length.find_first_not_of("0123456789") == std::string::npos &&
        min_length.size() < 18) {
      chunk = std::max<int64_t>(chunk, std::stoll(min_length));
    }
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
          transport.Send(RegistryOperation::kBlobUploadChunk, patch, scopes,
                         operation + " (upload chunk at " + std::to_string(offset) + ")",
                         /*retry=*/false, stats);
      if (sent.ok() && sent->status == 202) {
        std::string next = sent->Header("location");
        if (!next.empty()) location = transport.ResolveLocation(location, next);
        std::optional<int64_t> confirmed = NextOffsetFromRange(sent->Header("range"));
        const int64_t next_offset = confirmed.value_or(offset + length);
        if (next_offset > offset) budget.Renew();
        offset = next_offset;
        report(offset);
        continue;
      }
      const bool transient =
          !sent.ok() ? sent.status().retryable() : IsTransientHttpStatus(sent->status);
      const std::optional<std::chrono::milliseconds> wait =
          transient ? budget.NextTry(sent.ok() ? &*sent : nullptr) : std::nullopt;
      if (!wait.has_value()) return failed(sent, "upload chunk at " + std::to_string(offset));
      std::this_thread::sleep_for(*wait);
      // Where does the registry's copy end? GET on the session answers 204 with a Range.
      HttpRequest status;
      status.url = location;
      Result<HttpResponse> state =
          transport.Send(RegistryOperation::kBlobUploadStatus, status, scopes,
                         operation + " (upload status)", /*retry=*/true, stats);
      if (!state.ok() || state->status != 204) {
        // The session is gone (the registry restarted without it, or expired it):
        // begin again in a new one.
        return failed(state.ok() && !IsTransientHttpStatus(state->status)
                          ? Result<HttpResponse>(Status::Unavailable(
                                context + ": the upload session was lost (HTTP " +
                                std::to_string(state->status) + " on its status)"))
                          : state,
                      "upload status");
      }
      std::string next = state->Header("location");
      if (!next.empty()) location = transport.ResolveLocation(location, next);
      std::optional<int64_t> confirmed = NextOffsetFromRange(state->Header("range"));
      offset = confirmed.value_or(0);
      if (offset > body.size) offset = 0;
      if (stats != nullptr) ++stats->uploads_resumed;
    }
  }

  // The closing PUT: the whole body for a monolithic upload, nothing after chunks.
  location += location.find('?') == std::string::npos ? "?" : "&";
  location += "digest=" + UrlEncode(digest);
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
  Result<HttpResponse> done = transport.Send(RegistryOperation::kBlobUpload, put, scopes, operation,
                                             /*retry=*/false, stats);
  if (!done.ok() || done->status != 201) return failed(done, "complete upload");
  report(body.size);
  std::string stored = done->Header("docker-content-digest");
  if (!stored.empty() && stored != digest) {
    return Status::Internal(context + ": the registry stored the blob as " + stored);
  }
  return Status::Ok();
}

}  // namespace

Status UploadBlob(const RegistryTransport& transport, const std::string& repo,
                  std::string_view digest, const BlobBody& body, PushStats* stats) {
  const std::string operation = "push blob " + std::string(digest) + " to " + repo;
  UploadBudget budget(transport);
  for (int session = 1;; ++session) {
    bool restart = false;
    Status s = UploadOnce(transport, repo, digest, body, operation, budget, stats, &restart);
    if (s.ok() || !restart) return s;
    const std::optional<std::chrono::milliseconds> wait = budget.NextTry(nullptr);
    if (!wait.has_value()) {
      return s.WithContext("gave up after " + std::to_string(session) + " upload sessions");
    }
    if (stats != nullptr) ++stats->uploads_restarted;
    std::this_thread::sleep_for(*wait);
  }
}

}  // namespace manifold
