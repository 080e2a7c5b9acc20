#include "coordinator/api.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>

#include "common/digest.h"
#include "common/docker_config.h"
#include "common/log.h"
#include "common/platform.h"
#include "common/reference.h"
#include "common/validate.h"

namespace manifold {
namespace {

using nlohmann::json;

bool IsFinalBuildState(const std::string& state) {
  return state == "succeeded" || state == "failed" || state == "canceled";
}

int HttpStatusFor(const Status& status) {
  switch (status.code()) {
    case Status::Code::kInvalidArgument:
      return 400;
    case Status::Code::kNotFound:
      return 404;
    case Status::Code::kAlreadyExists:
    case Status::Code::kFailedPrecondition:
      return 409;
    case Status::Code::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

void Reply(httplib::Response& res, int code, const json& body) {
  res.status = code;
  // Build output need not be UTF-8; invalid bytes become U+FFFD instead of failing.
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n",
                  "application/json");
}

void ReplyError(httplib::Response& res, const Status& status) {
  Reply(res, HttpStatusFor(status), json{{"error", status.message()}});
}

json JobJson(const JobRecord& job) {
  json events = json::array();
  for (const JobEvent& event : job.events) {
    events.push_back({{"attempt", event.attempt},
                      {"state", event.state},
                      {"agent", event.agent_id},
                      {"at", event.at},
                      {"detail", event.detail}});
  }
  return {{"id", job.id},
          {"events", events},
          {"platform", job.platform.ToString()},
          {"state", job.state},
          {"attempt", job.attempt},
          {"agent", job.agent_id},
          {"emulated", job.emulated},
          {"placement", job.placement},
          {"manifest_digest", job.manifest.digest},
          {"manifest_media_type", job.manifest.media_type},
          {"manifest_size", job.manifest.size},
          {"error", job.error}};
}

json BuildJson(const BuildRecord& build) {
  json platforms = json::array();
  for (const Platform& p : build.spec.platforms) platforms.push_back(p.ToString());
  json jobs = json::array();
  for (const JobRecord& job : build.jobs) jobs.push_back(JobJson(job));
  return {{"id", build.id},
          {"state", build.state},
          {"platforms", platforms},
          {"tags", build.spec.tags},
          {"context", build.spec.context_digest},
          {"dockerfile_path", build.spec.dockerfile_path},
          {"build_args", build.spec.build_args},
          {"target", build.spec.target},
          {"labels", build.spec.labels},
          {"no_cache", build.spec.no_cache},
          {"pull", build.spec.pull},
          {"manifest_annotations", build.spec.manifest_annotations},
          {"index_annotations", build.spec.index_annotations},
          {"source", build.spec.source},
          {"revision", build.spec.revision},
          {"job_timeout_seconds", build.spec.job_timeout_s},
          {"emulation", EmulationPolicyName(build.spec.emulation)},
          {"secrets", build.spec.secret_ids},
          {"index_digest", build.index_digest},
          {"index_media_type", build.index_media_type},
          {"error", build.error},
          {"created_at", build.created_at},
          {"updated_at", build.updated_at},
          {"jobs", jobs}};
}

// Bounds on the free-text fields of a build request.
constexpr size_t kMaxDockerfileBytes = 1 << 20;
constexpr size_t kMaxPathBytes = 4096;
constexpr size_t kMaxMapValueBytes = 64 << 10;  // a build arg, label or annotation value
constexpr size_t kMaxMapEntries = 1000;         // build args, labels or annotations
constexpr size_t kMaxTags = 64;

// Turns a request body into a BuildSpec and the build's secrets (id -> bytes, kept out of
// the spec so that they are never stored), or says which field is wrong and why.
Result<BuildSpec> ParseBuildRequest(const std::string& body, const ContextStore& contexts,
                                    std::map<std::string, std::string>* secrets) {
  json request = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!request.is_object()) return Status::InvalidArgument("the request body is not a JSON object");
  auto string_field = [&](const char* name, bool required, std::string* out) -> Status {
    auto it = request.find(name);
    if (it == request.end() || it->is_null()) {
      return required ? Status::InvalidArgument(std::string("field \"") + name + "\" is required")
                      : Status::Ok();
    }
    if (!it->is_string()) {
      return Status::InvalidArgument(std::string("field \"") + name + "\" must be a string");
    }
    *out = it->get<std::string>();
    return Status::Ok();
  };
  auto text_field = [&](const char* name, bool required, size_t max_bytes,
                        std::string* out) -> Status {
    if (Status s = string_field(name, required, out); !s.ok()) return s;
    return ValidateText(name, *out, max_bytes);
  };
  auto string_list = [&](const char* name, std::vector<std::string>* out) -> Status {
    auto it = request.find(name);
    if (it == request.end() || !it->is_array() || it->empty()) {
      return Status::InvalidArgument(std::string("field \"") + name +
                                     "\" must be a non-empty list of strings");
    }
    for (const auto& item : *it) {
      if (!item.is_string()) {
        return Status::InvalidArgument(std::string("field \"") + name +
                                       "\" must contain only strings");
      }
      out->push_back(item.get<std::string>());
    }
    return Status::Ok();
  };

  BuildSpec spec;
  std::vector<std::string> platforms;
  if (Status s = string_list("platforms", &platforms); !s.ok()) return s;
  for (const std::string& text : platforms) {
    Result<Platform> platform = ParsePlatform(text);
    if (!platform.ok()) return platform.status().WithContext("field \"platforms\"");
    if (std::find(spec.platforms.begin(), spec.platforms.end(), *platform) ==
        spec.platforms.end()) {
      spec.platforms.push_back(*platform);
    }
  }
  if (spec.platforms.size() > 32) {
    return Status::InvalidArgument("field \"platforms\" lists more than 32 platforms");
  }
  std::vector<std::string> tags;
  if (Status s = string_list("tags", &tags); !s.ok()) return s;
  if (tags.size() > kMaxTags) {
    return Status::InvalidArgument("field \"tags\" lists more than " + std::to_string(kMaxTags) +
                                   " tags");
  }
  for (const std::string& text : tags) {
    Result<Reference> ref = ParseReference(text);
    if (!ref.ok()) return ref.status().WithContext("field \"tags\"");
    if (!ref->digest.empty()) {
      return Status::InvalidArgument("field \"tags\": \"" + text +
                                     "\" names a digest; an index is pushed under a tag");
    }
    spec.tags.push_back(ref->ToString());
  }
  if (Status s = string_field("context", true, &spec.context_digest); !s.ok()) return s;
  if (!IsValidDigest(spec.context_digest)) {
    return Status::InvalidArgument("field \"context\" must be a sha256 digest");
  }
  if (Status s = text_field("dockerfile", true, kMaxDockerfileBytes, &spec.dockerfile); !s.ok()) {
    return s;
  }
  if (spec.dockerfile.empty()) return Status::InvalidArgument("field \"dockerfile\" is empty");
  if (Status s = text_field("dockerfile_path", false, kMaxPathBytes, &spec.dockerfile_path);
      !s.ok()) {
    return s;
  }
  if (Status s = string_field("target", false, &spec.target); !s.ok()) return s;
  if (!spec.target.empty()) {
    if (Status s = ValidateStageName("target", spec.target); !s.ok()) return s;
  }
  // An object of strings whose keys `validate_key` accepts; the values are free text.
  auto string_map = [&](const char* name,
                        Status (*validate_key)(std::string_view, std::string_view),
                        std::map<std::string, std::string>* out) -> Status {
    auto it = request.find(name);
    if (it == request.end() || it->is_null()) return Status::Ok();
    if (!it->is_object()) {
      return Status::InvalidArgument(std::string("field \"") + name +
                                     "\" must be an object of strings");
    }
    if (it->size() > kMaxMapEntries) {
      return Status::InvalidArgument(std::string("field \"") + name + "\" has more than " +
                                     std::to_string(kMaxMapEntries) + " entries");
    }
    for (const auto& [key, value] : it->items()) {
      if (Status s = validate_key(name, key); !s.ok()) return s;
      if (!value.is_string()) {
        return Status::InvalidArgument(std::string("field \"") + name + "\": the value of \"" +
                                       key + "\" must be a string");
      }
      std::string text = value.get<std::string>();
      if (Status s = ValidateText(name, text, kMaxMapValueBytes); !s.ok()) {
        return s.WithContext("the value of " + key);
      }
      (*out)[key] = std::move(text);
    }
    return Status::Ok();
  };
  auto bool_field = [&](const char* name, bool* out) -> Status {
    auto it = request.find(name);
    if (it == request.end() || it->is_null()) return Status::Ok();
    if (!it->is_boolean()) {
      return Status::InvalidArgument(std::string("field \"") + name + "\" must be true or false");
    }
    *out = it->get<bool>();
    return Status::Ok();
  };
  Status fields[] = {
      string_map("build_args", ValidateBuildArgName, &spec.build_args),
      string_map("labels", ValidateLabelKey, &spec.labels),
      string_map("manifest_annotations", ValidateLabelKey, &spec.manifest_annotations),
      string_map("index_annotations", ValidateLabelKey, &spec.index_annotations),
      bool_field("no_cache", &spec.no_cache),
      bool_field("pull", &spec.pull),
      text_field("source", false, kMaxPathBytes, &spec.source),
      text_field("revision", false, kMaxPathBytes, &spec.revision),
  };
  for (const Status& s : fields) {
    if (!s.ok()) return s;
  }
  if (auto it = request.find("job_timeout_seconds"); it != request.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 7 * 86400) {
      return Status::InvalidArgument(
          "field \"job_timeout_seconds\" must be a whole number of seconds from 1 to 604800");
    }
    spec.job_timeout_s = it->get<uint32_t>();
  }
  if (auto it = request.find("secrets"); it != request.end() && !it->is_null()) {
    // {"ID": "<base64 of the bytes>"}; errors name the id, never the value.
    if (!it->is_object() || it->size() > kMaxSecrets) {
      return Status::InvalidArgument("field \"secrets\" must be an object of at most " +
                                     std::to_string(kMaxSecrets) +
                                     " ids, each with its bytes in base64");
    }
    for (const auto& [id, value] : it->items()) {
      if (Status s = ValidateSecretId("secrets", id); !s.ok()) return s;
      std::optional<std::string> bytes =
          value.is_string() ? Base64Decode(value.get<std::string>()) : std::nullopt;
      if (!bytes) {
        return Status::InvalidArgument("field \"secrets\": the value of \"" + id +
                                       "\" must be its bytes in base64");
      }
      if (bytes->size() > kMaxSecretBytes) {
        return Status::InvalidArgument("field \"secrets\": secret \"" + id + "\" is " +
                                       std::to_string(bytes->size()) + " bytes; at most " +
                                       std::to_string(kMaxSecretBytes) + " are allowed");
      }
      spec.secret_ids.push_back(id);
      (*secrets)[id] = std::move(*bytes);
    }
  }
  std::string emulation;
  if (Status s = string_field("emulation", false, &emulation); !s.ok()) return s;
  if (!emulation.empty()) {
    std::optional<EmulationPolicy> policy = ParseEmulationPolicy(emulation);
    if (!policy) {
      return Status::InvalidArgument(
          "field \"emulation\" must be one of never, fallback, allow, not \"" + emulation + "\"");
    }
    spec.emulation = *policy;
  }
  // Existence last, so a request with several problems is told about its syntax first.
  if (!contexts.Has(spec.context_digest)) {
    return Status::InvalidArgument("field \"context\": the coordinator has no context " +
                                   spec.context_digest + "; upload it first (PUT /v1/contexts/" +
                                   spec.context_digest + ")");
  }
  return spec;
}

Result<uint64_t> ParseId(const std::string& text) {
  if (text.empty() || text.size() > 18) return Status::InvalidArgument("bad build id " + text);
  return static_cast<uint64_t>(std::stoull(text));
}

Result<int64_t> QueryNumber(const httplib::Request& req, const char* name, int64_t fallback) {
  if (!req.has_param(name)) return fallback;
  std::string text = req.get_param_value(name);
  static const std::regex kNumber("[0-9]{1,18}");
  if (!std::regex_match(text, kNumber)) {
    return Status::InvalidArgument(std::string("query parameter \"") + name +
                                   "\" must be a non-negative number");
  }
  return std::stoll(text);
}

}  // namespace

Api::Api(Store& store, ContextStore& contexts, BuildQueue& queue, ApiOptions options)
    : store_(store), contexts_(contexts), queue_(queue), options_(std::move(options)) {}

Api::~Api() { Stop(); }

Status Api::Start() {
  if (options_.tls_cert_file.empty() != options_.tls_key_file.empty()) {
    return Status::InvalidArgument("--tls-cert and --tls-key go together");
  }
  if (options_.tls_cert_file.empty()) {
    server_ = std::make_unique<httplib::Server>();
  } else {
    auto tls = std::make_unique<httplib::SSLServer>(options_.tls_cert_file.c_str(),
                                                    options_.tls_key_file.c_str());
    if (!tls->is_valid()) {
      return Status::InvalidArgument("cannot load the API's TLS certificate " +
                                     options_.tls_cert_file + " and key " + options_.tls_key_file +
                                     " (PEM files that belong together)");
    }
    server_ = std::move(tls);
  }
  Routes();
  port_ = options_.listen_port == 0
              ? server_->bind_to_any_port(options_.listen_host)
              : (server_->bind_to_port(options_.listen_host, options_.listen_port)
                     ? options_.listen_port
                     : -1);
  if (port_ <= 0) {
    return Status::FailedPrecondition("cannot listen for the API on " + options_.listen_host + ":" +
                                      std::to_string(options_.listen_port) +
                                      " (is the port in use?)");
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return Status::Ok();
}

void Api::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

void Api::Routes() {
  httplib::Server& s = *server_;
  s.set_payload_max_length(options_.max_context_bytes);
  // Runs before the body is read: a declared body over the limit of its route is refused
  // without reading it. Only context uploads may be large.
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    bool upload = req.method == "PUT" && req.path.rfind("/v1/contexts/", 0) == 0;
    uint64_t limit = upload ? options_.max_context_bytes : options_.max_request_bytes;
    uint64_t declared = req.get_header_value<uint64_t>("Content-Length");
    if (declared <= limit) return httplib::Server::HandlerResponse::Unhandled;
    Reply(res, 413,
          json{{"error", std::string(upload ? "the build context" : "the request body") + " is " +
                             std::to_string(declared) +
                             " bytes; this coordinator accepts at most " + std::to_string(limit) +
                             (upload ? " (--max-context-bytes)" : " (--max-request-bytes)")}});
    return httplib::Server::HandlerResponse::Handled;
  });
  s.set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        spdlog::error("{} {} failed: {}", req.method, req.path, what);
        Reply(res, 500, json{{"error", "internal error: " + what}});
      });
  if (options_.auth != nullptr && options_.auth->required()) {
    s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      ApiAuth::Decision decision =
          options_.auth->Check(req.method, req.path, req.get_header_value("Authorization"),
                               req.get_param_value("grant"));
      if (decision.http_status == 0) return httplib::Server::HandlerResponse::Unhandled;
      if (decision.http_status == 401) res.set_header("WWW-Authenticate", "Bearer");
      Reply(res, decision.http_status, json{{"error", decision.error}});
      return httplib::Server::HandlerResponse::Handled;
    });
  }

  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  s.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    Status ping = store_.Ping();
    if (ping.ok()) {
      res.set_content("ready\n", "text/plain");
    } else {
      ReplyError(res, ping);
    }
  });

  const std::string kContext = R"(/v1/contexts/(sha256:[0-9a-f]{64}))";
  // GET also answers HEAD (cpp-httplib routes HEAD to GET handlers without the body).
  s.Get(kContext, [this](const httplib::Request& req, httplib::Response& res) {
    Result<std::string> path = contexts_.Path(req.matches[1].str());
    if (!path.ok()) return ReplyError(res, path.status());
    auto size = std::filesystem::file_size(*path);
    res.set_content_provider(size, "application/x-tar",
                             [file = *path](size_t offset, size_t length, httplib::DataSink& sink) {
                               std::ifstream in(file, std::ios::binary);
                               in.seekg(static_cast<std::streamoff>(offset));
                               std::vector<char> buffer(std::min<size_t>(length, 1 << 20));
                               in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
                               if (in.gcount() <= 0) return false;
                               sink.write(buffer.data(), static_cast<size_t>(in.gcount()));
                               return true;
                             });
  });
  s.Put(kContext, [this](const httplib::Request& req, httplib::Response& res) {
    std::string digest = req.matches[1].str();
    Status stored = contexts_.Put(digest, req.body);
    if (!stored.ok()) return ReplyError(res, stored);
    Reply(res, 201, json{{"digest", digest}, {"size", req.body.size()}});
  });

  s.Post("/v1/builds", [this](const httplib::Request& req, httplib::Response& res) {
    if (req.body.size() > options_.max_request_bytes) {
      return ReplyError(
          res, Status::InvalidArgument("the build request is larger than " +
                                       std::to_string(options_.max_request_bytes) + " bytes"));
    }
    std::string key = req.get_header_value("Idempotency-Key");
    if (key.size() > 255) {
      return ReplyError(res, Status::InvalidArgument("Idempotency-Key is longer than 255"));
    }
    std::map<std::string, std::string> secrets;
    Result<BuildSpec> spec = ParseBuildRequest(req.body, contexts_, &secrets);
    if (!spec.ok()) return ReplyError(res, spec.status());
    if (!secrets.empty() && !queue_.agent_link_encrypted()) {
      return ReplyError(
          res, Status::InvalidArgument(
                   "field \"secrets\": this coordinator's agent link is plaintext (development "
                   "mode), and build secrets travel to agents only encrypted; start it with "
                   "--curve-secret-key and --agent-keys (see manifold keygen)"));
    }
    auto created = store_.CreateBuild(*spec, key);
    if (!created.ok()) return ReplyError(res, created.status());
    const auto& [build, is_new] = *created;
    if (is_new) {
      auto shared = std::make_shared<const BuildSpec>(build.spec);
      std::vector<QueuedJob> jobs;
      for (const JobRecord& job : build.jobs) {
        jobs.push_back({job.id, build.id, job.platform, shared});
      }
      queue_.Enqueue(std::move(jobs), std::move(secrets));
      spdlog::info("{}build {} submitted: {} for {}", LogIds{.build = build.id}, build.id,
                   build.spec.tags.front(), build.spec.platforms.size());
    }
    Reply(res, is_new ? 201 : 200, BuildJson(build));
  });

  s.Post(R"(/v1/builds/([0-9]+)/cancel)",
         [this](const httplib::Request& req, httplib::Response& res) {
           Result<uint64_t> id = ParseId(req.matches[1].str());
           if (!id.ok()) return ReplyError(res, id.status());
           Result<std::vector<JobRecord>> held = store_.CancelBuild(*id);
           if (!held.ok()) return ReplyError(res, held.status());
           queue_.BuildCanceled(std::move(*held));
           spdlog::info("{}build {} canceled on request", LogIds{.build = *id}, *id);
           auto build = store_.GetBuild(*id);
           if (!build.ok()) return ReplyError(res, build.status());
           Reply(res, 200, BuildJson(*build));
         });

  s.Post(R"(/v1/agents/([^/]+)/drain)",
         [this](const httplib::Request& req, httplib::Response& res) {
           std::string agent_id = req.matches[1].str();
           Status drained = queue_.DrainAgent(agent_id);
           if (!drained.ok()) return ReplyError(res, drained);
           Reply(res, 202, json{{"id", agent_id}, {"state", "draining"}});
         });

  s.Get("/v1/builds", [this](const httplib::Request& req, httplib::Response& res) {
    Result<int64_t> limit = QueryNumber(req, "limit", 20);
    if (!limit.ok()) return ReplyError(res, limit.status());
    auto builds = store_.ListBuilds(static_cast<int>(std::clamp<int64_t>(*limit, 1, 500)));
    if (!builds.ok()) return ReplyError(res, builds.status());
    json list = json::array();
    for (const BuildRecord& build : *builds) list.push_back(BuildJson(build));
    Reply(res, 200, json{{"builds", list}});
  });

  s.Get(R"(/v1/builds/([0-9]+))", [this](const httplib::Request& req, httplib::Response& res) {
    Result<uint64_t> id = ParseId(req.matches[1].str());
    if (!id.ok()) return ReplyError(res, id.status());
    auto build = store_.GetBuild(*id);
    if (!build.ok()) return ReplyError(res, build.status());
    Reply(res, 200, BuildJson(*build));
  });

  s.Get(R"(/v1/builds/([0-9]+)/logs)", [this](const httplib::Request& req, httplib::Response& res) {
    Result<uint64_t> id = ParseId(req.matches[1].str());
    if (!id.ok()) return ReplyError(res, id.status());
    Result<int64_t> after = QueryNumber(req, "after", 0);
    if (!after.ok()) return ReplyError(res, after.status());
    // The state is read before the chunks: every chunk of a job is stored before its
    // result, so a final state read first means no chunk can still arrive.
    auto build = store_.GetBuild(*id);
    if (!build.ok()) return ReplyError(res, build.status());
    constexpr int kLimit = 500;
    auto chunks = store_.ListLogs(*id, *after, kLimit);
    if (!chunks.ok()) return ReplyError(res, chunks.status());
    json list = json::array();
    int64_t next = *after;
    for (const LogChunkRecord& chunk : *chunks) {
      list.push_back({{"seq", chunk.seq},
                      {"platform", chunk.platform},
                      {"attempt", chunk.attempt},
                      {"data", chunk.data}});
      next = chunk.seq;
    }
    bool done = IsFinalBuildState(build->state) && chunks->size() < static_cast<size_t>(kLimit);
    Reply(res, 200,
          json{{"chunks", list}, {"next", next}, {"done", done}, {"pruned", build->logs_pruned}});
  });

  // ?platform= and ?idle=true are what an autoscaler's scale-in asks: which agents of
  // this fleet run no job and are not draining, so that removing one kills no build.
  s.Get("/v1/agents", [this](const httplib::Request& req, httplib::Response& res) {
    std::optional<Platform> platform;
    if (req.has_param("platform")) {
      Result<Platform> parsed = ParsePlatform(req.get_param_value("platform"));
      if (!parsed.ok()) {
        return ReplyError(res, Status::InvalidArgument("query parameter \"platform\": " +
                                                       parsed.status().message()));
      }
      platform = *parsed;
    }
    std::optional<bool> idle;
    if (req.has_param("idle")) {
      std::string text = req.get_param_value("idle");
      if (text != "true" && text != "false") {
        return ReplyError(
            res, Status::InvalidArgument("query parameter \"idle\" must be true or false"));
      }
      idle = text == "true";
    }
    json list = json::array();
    for (const AgentView& agent : queue_.Agents()) {
      bool agent_idle = agent.busy == 0 && agent.state == "online";
      if (idle && *idle != agent_idle) continue;
      if (platform &&
          std::none_of(agent.platforms.begin(), agent.platforms.end(),
                       [&](const PlatformOffer& o) { return o.platform == *platform; })) {
        continue;
      }
      json platforms = json::array();
      for (const PlatformOffer& offer : agent.platforms) {
        platforms.push_back(
            {{"platform", offer.platform.ToString()}, {"emulated", offer.emulated}});
      }
      list.push_back({{"id", agent.id},
                      {"hostname", agent.hostname},
                      {"version", agent.version},
                      {"platforms", platforms},
                      {"slots", agent.slots},
                      {"busy", agent.busy},
                      {"state", agent.state},
                      {"idle", agent_idle},
                      {"last_seen_ms_ago", agent.last_seen_ms_ago}});
    }
    Reply(res, 200, json{{"agents", list}});
  });
}

}  // namespace manifold
