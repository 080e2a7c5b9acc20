#include "common/http_client.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "common/redact.h"

namespace manifold {
namespace {

// libcurl wants one global initialisation before any handle exists, and it is not
// thread-safe itself; a function-local static gives exactly one, race-free.
void EnsureCurlInitialised() {
  static const CURLcode init = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (init != CURLE_OK) std::abort();  // only fails when the process is out of memory
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

struct FileCloser {
  void operator()(FILE* f) const {
    if (f != nullptr) std::fclose(f);
  }
};
using FilePtr = std::unique_ptr<FILE, FileCloser>;

// Where the upload body comes from: memory or an open file.
struct UploadSource {
  std::string_view memory;
  size_t offset = 0;
  FILE* file = nullptr;
  int64_t file_start = 0;      // where in the file the body starts
  int64_t file_remaining = 0;  // bytes of the body not yet read
  int64_t file_length = 0;     // the body's length, to rewind
};

// The system's trusted CAs as PEM text, read once: CURLOPT_CAINFO_BLOB replaces the
// default bundle, and a per-registry CA must add to the system's trust, not replace it.
const std::string& SystemCaBundle() {
  static const std::string bundle = [] {
    std::string out;
    const curl_version_info_data* info = curl_version_info(CURLVERSION_NOW);
    if (info == nullptr || info->cainfo == nullptr) return out;
    FilePtr f(std::fopen(info->cainfo, "rb"));
    if (!f) return out;
    char buffer[65536];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, f.get())) > 0) out.append(buffer, n);
    if (!out.empty() && out.back() != '\n') out.push_back('\n');
    return out;
  }();
  return bundle;
}

// State shared by the response callbacks of one transfer.
struct ResponseSink {
  HttpResponse* response = nullptr;
  const HttpRequest* request = nullptr;
  FilePtr file;  // opened on the first 2xx body byte when response_file is set
  bool file_opened = false;
  std::string error;                  // why a callback stopped the transfer
  Status sink_status = Status::Ok();  // what response_sink answered when it stopped it
};

bool Is2xx(long status) { return status >= 200 && status < 300; }

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<ResponseSink*>(user);
  std::string_view line(data, size * count);
  if (line.substr(0, 5) == "HTTP/") {
    // A new response starts (a redirect hop or the final answer): keep only its headers.
    sink->response->headers.clear();
    sink->response->body.clear();
    auto space = line.find(' ');
    if (space != std::string_view::npos) {
      sink->response->status =
          std::strtol(std::string(line.substr(space + 1, 3)).c_str(), nullptr, 10);
    }
    return size * count;
  }
  auto colon = line.find(':');
  if (colon != std::string_view::npos && colon > 0) {
    sink->response->headers.emplace_back(ToLower(Trim(line.substr(0, colon))),
                                         std::string(Trim(line.substr(colon + 1))));
  }
  return size * count;
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<ResponseSink*>(user);
  const size_t n = size * count;
  if (sink->request->response_sink && Is2xx(sink->response->status)) {
    sink->sink_status = sink->request->response_sink(std::string_view(data, n));
    return sink->sink_status.ok() ? n : 0;
  }
  if (!sink->request->response_file.empty() && Is2xx(sink->response->status)) {
    if (!sink->file_opened) {
      sink->file.reset(std::fopen(sink->request->response_file.c_str(), "wb"));
      sink->file_opened = true;
      if (!sink->file) {
        sink->error = "cannot create " + sink->request->response_file + ": " + std::strerror(errno);
        return 0;
      }
    }
    if (!sink->file) return 0;
    if (std::fwrite(data, 1, n, sink->file.get()) != n) {
      sink->error = "cannot write " + sink->request->response_file + ": " + std::strerror(errno);
      return 0;
    }
    return n;
  }
  if (sink->response->body.size() + n > sink->request->max_body_bytes) {
    sink->error = "response body larger than the limit of " +
                  std::to_string(sink->request->max_body_bytes) + " bytes";
    return 0;
  }
  sink->response->body.append(data, n);
  return n;
}

size_t OnRead(char* buffer, size_t size, size_t count, void* user) {
  auto* source = static_cast<UploadSource*>(user);
  const size_t room = size * count;
  if (source->file != nullptr) {
    const size_t want = std::min(room, static_cast<size_t>(source->file_remaining));
    if (want == 0) return 0;
    size_t n = std::fread(buffer, 1, want, source->file);
    if (n == 0) return CURL_READFUNC_ABORT;  // the file shrank or cannot be read
    source->file_remaining -= static_cast<int64_t>(n);
    return n;
  }
  size_t n = std::min(room, source->memory.size() - source->offset);
  std::memcpy(buffer, source->memory.data() + source->offset, n);
  source->offset += n;
  return n;
}

// Rewinds the upload when curl must resend it (a redirect, a rejected reused connection).
int OnSeek(void* user, curl_off_t offset, int origin) {
  auto* source = static_cast<UploadSource*>(user);
  if (origin != SEEK_SET || offset < 0) return CURL_SEEKFUNC_CANTSEEK;
  if (source->file != nullptr) {
    if (offset > source->file_length) return CURL_SEEKFUNC_FAIL;
    if (fseeko(source->file, static_cast<off_t>(source->file_start + offset), SEEK_SET) != 0) {
      return CURL_SEEKFUNC_FAIL;
    }
    source->file_remaining = source->file_length - offset;
    return CURL_SEEKFUNC_OK;
  }
  if (static_cast<size_t>(offset) > source->memory.size()) return CURL_SEEKFUNC_FAIL;
  source->offset = static_cast<size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

// TLS handshakes that fail the same way every time: the server does not speak TLS at all
// (OpenSSL reads its plain HTTP answer as a record of an unknown version), or it sent an
// alert refusing the client's certificate or the lack of one. Under TLS 1.3 such an
// alert arrives only at the first read, so it can surface as a receive error.
bool IsPermanentTlsFailure(CURLcode code, std::string_view detail) {
  if (code != CURLE_SSL_CONNECT_ERROR && code != CURLE_RECV_ERROR && code != CURLE_SEND_ERROR) {
    return false;
  }
  for (std::string_view reason :
       {"wrong version number", "alert bad certificate", "alert certificate required",
        "alert unknown ca", "alert certificate unknown", "alert certificate expired",
        "alert certificate revoked", "alert unsupported certificate"}) {
    if (detail.find(reason) != std::string_view::npos) return true;
  }
  return false;
}

// Maps a curl failure to a Status code: problems with the request itself, certificates
// and permanent TLS refusals are not worth retrying; everything else that went wrong on
// the way (connect, DNS, TLS handshake, timeouts, resets) is transient.
Status CurlError(CURLcode code, const HttpRequest& request, const char* detail) {
  std::string message = DescribeRequest(request) + " failed: " + curl_easy_strerror(code);
  if (detail != nullptr && detail[0] != '\0') message += " (" + std::string(detail) + ")";
  if (detail != nullptr && IsPermanentTlsFailure(code, detail)) {
    return Status::FailedPrecondition(message);
  }
  switch (code) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT:
      return Status::InvalidArgument(message);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
      return Status::FailedPrecondition(message);
    case CURLE_OUT_OF_MEMORY:
    case CURLE_FAILED_INIT:
      return Status::Internal(message);
    default:
      return Status::Unavailable(message);
  }
}

struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

}  // namespace

// Idle easy handles keep their connections open (curl_easy_reset leaves them), so taking
// one from here is what makes a request reuse the previous one's connection. The share
// object adds DNS answers and TLS sessions across handles; libcurl documents sharing the
// connection cache itself between threads as unsafe, hence one handle per request in
// flight rather than one shared cache.
struct HttpClient::Pool {
  static constexpr size_t kMaxIdle = 8;

  Pool() : share(curl_share_init()) {
    if (share == nullptr) return;  // only without memory; handles then work unshared
    curl_share_setopt(share, CURLSHOPT_LOCKFUNC, &Lock);
    curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, &Unlock);
    curl_share_setopt(share, CURLSHOPT_USERDATA, this);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  }
  ~Pool() {
    for (CURL* h : idle) curl_easy_cleanup(h);  // before the share they use
    if (share != nullptr) curl_share_cleanup(share);
  }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // An idle handle with its options reset, or a new one; nullptr when curl cannot make one.
  CURL* Take() {
    CURL* h = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!idle.empty()) {
        h = idle.back();
        idle.pop_back();
      }
    }
    if (h != nullptr) {
      curl_easy_reset(h);
    } else {
      h = curl_easy_init();
      if (h == nullptr) return nullptr;
    }
    if (share != nullptr) curl_easy_setopt(h, CURLOPT_SHARE, share);
    return h;
  }
  void Give(CURL* h) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (idle.size() < kMaxIdle) {
        idle.push_back(h);
        return;
      }
    }
    curl_easy_cleanup(h);
  }

  static void Lock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
    static_cast<Pool*>(user)->share_mu[data].lock();
  }
  static void Unlock(CURL*, curl_lock_data data, void* user) {
    static_cast<Pool*>(user)->share_mu[data].unlock();
  }

  CURLSH* share;
  std::mutex share_mu[CURL_LOCK_DATA_LAST];
  std::mutex mu;
  std::vector<CURL*> idle;  // guarded by mu
};

std::string HttpResponse::Header(std::string_view name) const {
  const std::string wanted = ToLower(name);
  for (const auto& [key, value] : headers) {
    if (key == wanted) return value;
  }
  return "";
}

std::string DescribeRequest(const HttpRequest& request) {
  return request.method + " " + RedactUrl(request.url);
}

HttpClient::HttpClient() {
  EnsureCurlInitialised();
  pool_ = std::make_shared<Pool>();
}

Result<HttpResponse> HttpClient::Send(const HttpRequest& request) const {
  // Back to the pool when done, connection and all, whatever the outcome: libcurl itself
  // closes connections that a failure left unusable.
  auto give_back = [pool = pool_.get()](CURL* h) { pool->Give(h); };
  std::unique_ptr<CURL, decltype(give_back)> curl(pool_->Take(), give_back);
  if (!curl) return Status::Internal(DescribeRequest(request) + ": curl_easy_init failed");
  CURL* h = curl.get();

  HttpResponse response;
  ResponseSink sink;
  sink.response = &response;
  sink.request = &request;
  char error_buffer[CURL_ERROR_SIZE] = {0};

  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  // Without this, libcurl uses SIGALRM for DNS timeouts, which is unsafe with threads.
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, request.timeout_ms);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, request.connect_timeout_ms);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, request.follow_redirects ? 1L : 0L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &sink);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);

  std::unique_ptr<curl_slist, SlistDeleter> headers;
  auto add_header = [&headers](const std::string& line) {
    headers.reset(curl_slist_append(headers.release(), line.c_str()));
  };
  for (const auto& [name, value] : request.headers) {
    // "Name:" would delete a header curl adds itself; "Name;" sends it empty.
    add_header(value.empty() ? name + ";" : name + ": " + value);
  }

  UploadSource source;
  FilePtr upload_file;
  const bool has_body = !request.body.empty() || !request.body_file.empty() ||
                        request.body_fd >= 0 || request.method == "PUT" ||
                        request.method == "POST" || request.method == "PATCH";
  if (request.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (request.method == "GET" && !has_body) {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (has_body) {
    curl_off_t size = 0;
    if (!request.body_file.empty() || request.body_fd >= 0) {
      const std::string body_name = request.body_fd >= 0
                                        ? "descriptor " + std::to_string(request.body_fd)
                                        : request.body_file;
      if (request.body_fd >= 0) {
        // A copy for stdio to own and close; it shares the caller's file and offset.
        int copy = fcntl(request.body_fd, F_DUPFD_CLOEXEC, 0);
        upload_file.reset(copy >= 0 ? fdopen(copy, "rb") : nullptr);
        if (copy >= 0 && !upload_file) close(copy);
      } else {
        upload_file.reset(std::fopen(request.body_file.c_str(), "rb"));
      }
      struct stat st;
      if (!upload_file || fstat(fileno(upload_file.get()), &st) != 0) {
        return Status::NotFound(DescribeRequest(request) + ": cannot open upload body " +
                                body_name + ": " + std::strerror(errno));
      }
      const int64_t file_size = static_cast<int64_t>(st.st_size);
      if (request.body_file_offset < 0 || request.body_file_offset > file_size ||
          (request.body_file_length >= 0 &&
           request.body_file_offset + request.body_file_length > file_size)) {
        return Status::InvalidArgument(DescribeRequest(request) + ": the range to upload lies " +
                                       "outside " + body_name + " (" + std::to_string(file_size) +
                                       " bytes)");
      }
      if (fseeko(upload_file.get(), static_cast<off_t>(request.body_file_offset), SEEK_SET) != 0) {
        return Status::Internal(DescribeRequest(request) + ": cannot seek in " + body_name + ": " +
                                std::strerror(errno));
      }
      source.file = upload_file.get();
      source.file_start = request.body_file_offset;
      source.file_length = request.body_file_length >= 0 ? request.body_file_length
                                                         : file_size - request.body_file_offset;
      source.file_remaining = source.file_length;
      size = static_cast<curl_off_t>(source.file_length);
    } else {
      source.memory = request.body;
      size = static_cast<curl_off_t>(request.body.size());
    }
    // UPLOAD with a known size sends Content-Length rather than a chunked body, which
    // registries require for monolithic blob uploads; CUSTOMREQUEST sets the verb.
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, size);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, &OnRead);
    curl_easy_setopt(h, CURLOPT_READDATA, &source);
    curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, &OnSeek);
    curl_easy_setopt(h, CURLOPT_SEEKDATA, &source);
    curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 2L << 20);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    // A server that never answers 100-continue would stall every upload by a second.
    add_header("Expect:");
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  if (headers) curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());

  std::string ca_bundle;
  if (!request.extra_ca_pem.empty()) {
    ca_bundle = SystemCaBundle() + request.extra_ca_pem;
    curl_blob blob;
    blob.data = ca_bundle.data();
    blob.len = ca_bundle.size();
    // Copied: the handle outlives this call in the pool, and connections kept open
    // compare their TLS settings with the next request's.
    blob.flags = CURL_BLOB_COPY;
    curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
  }
  if (request.tls_max_1_2) {
    curl_easy_setopt(h, CURLOPT_SSLVERSION,
                     static_cast<long>(CURL_SSLVERSION_TLSv1_2) |
                         static_cast<long>(CURL_SSLVERSION_MAX_TLSv1_2));
  }
  if (!request.client_cert_file.empty()) {
    curl_easy_setopt(h, CURLOPT_SSLCERT, request.client_cert_file.c_str());
    curl_easy_setopt(h, CURLOPT_SSLKEY, request.client_key_file.c_str());
  }

  CURLcode code = curl_easy_perform(h);
  if (code != CURLE_OK) {
    if (sink.file) {
      sink.file.reset();
      std::remove(request.response_file.c_str());
    }
    if (!sink.sink_status.ok()) return sink.sink_status;
    if (!sink.error.empty()) {
      // One of our callbacks stopped the transfer; its reason is the useful one.
      return Status::Internal(DescribeRequest(request) + " failed: " + sink.error);
    }
    return CurlError(code, request, error_buffer);
  }

  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  response.status = status;
  char* effective = nullptr;
  if (curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &effective) == CURLE_OK &&
      effective != nullptr) {
    response.effective_url = effective;
  }

  if (!request.response_file.empty() && Is2xx(status) && request.method != "HEAD") {
    if (!sink.file_opened) {
      // An empty 2xx body still leaves the (empty) file the caller asked for.
      sink.file.reset(std::fopen(request.response_file.c_str(), "wb"));
      sink.file_opened = true;
    }
    if (!sink.file || std::fflush(sink.file.get()) != 0 || std::ferror(sink.file.get())) {
      std::string reason = std::strerror(errno);
      sink.file.reset();
      std::remove(request.response_file.c_str());
      return Status::Internal(DescribeRequest(request) + ": cannot write " + request.response_file +
                              ": " + reason);
    }
    FILE* f = sink.file.release();
    if (std::fclose(f) != 0) {
      std::string reason = std::strerror(errno);
      std::remove(request.response_file.c_str());
      return Status::Internal(DescribeRequest(request) + ": cannot write " + request.response_file +
                              ": " + reason);
    }
  }
  return response;
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

}  // namespace manifold
