#include "coordinator/api.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>

#include "common/log.h"
#include "common/platform.h"
#include "coordinator/api_body.h"
#include "coordinator/build_request.h"
#include "coordinator/log_cap.h"
#include "coordinator/retention.h"

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

// Sends a request only the leader can answer to `leader` (BuildQueue::leader_url, not
// ""): 307, so the client repeats it there with its method and body, or 503 while no
// coordinator leads.
void ReplyWithLeader(const httplib::Request& req, httplib::Response& res,
                     const std::string& leader) {
  if (leader == "?") {
    return ReplyError(
        res, Status::Unavailable("no coordinator leads at the moment (a failover is under way); "
                                 "retry in a few seconds"));
  }
  std::string location = leader + req.path;
  if (size_t query = req.target.find('?'); query != std::string::npos) {
    location += req.target.substr(query);
  }
  res.set_header("Location", location);
  Reply(res, 307,
        json{{"error", "this coordinator does not lead; the leader at " + leader +
                           " answers this request"}});
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
          {"retries", job.retries},
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
          {"network", build.spec.network.empty() ? "default" : build.spec.network},
          {"entitlements", build.spec.entitlements},
          {"limits",
           {{"memory_bytes", build.spec.limits.memory_bytes},
            {"cpu_millis", build.spec.limits.cpu_millis},
            {"pids", build.spec.limits.pids},
            {"disk_bytes", build.spec.limits.disk_bytes}}},
          {"cache_from", build.spec.cache_from},
          {"cache_to", build.spec.cache_to},
          {"cache_mode", build.spec.cache_mode},
          {"index_digest", build.index_digest},
          {"index_media_type", build.index_media_type},
          {"error", build.error},
          {"created_at", build.created_at},
          {"updated_at", build.updated_at},
          {"jobs", jobs}};
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

Result<BuildRecord> Api::FindBuild(uint64_t id) {
  Result<BuildRecord> build = store_.GetBuild(id);
  if (build.ok() || build.status().code() != Status::Code::kNotFound ||
      options_.retention.count() == 0) {
    return build;
  }
  // Only asked for a build not found, so the common path costs nothing more.
  Result<bool> issued = store_.BuildIdIssued(id);
  if (!issued.ok() || !*issued) return build;
  return Status::NotFound("build " + std::to_string(id) +
                          " was deleted: finished builds are pruned after the retention of " +
                          FormatRetention(options_.retention) + " (the coordinator's --retention)");
}

void Api::Routes() {
  httplib::Server& s = *server_;
  s.set_payload_max_length(options_.max_context_bytes);
  // The one handler that runs before any body is read: a declared body over its route's
  // limit is refused unread, then the caller must be allowed. A body sent without a
  // declared size (chunked) is bounded while it is read (ReadBody).
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    auto refuse = [&](int code, const json& body) {
      if (HasBody(req)) {
        ReplyAndClose(res, code, body);
      } else {
        Reply(res, code, body);
      }
      return httplib::Server::HandlerResponse::Handled;
    };
    if (req.method != "GET" && req.method != "HEAD" && req.method != "POST" &&
        req.method != "PUT") {
      return refuse(405, json{{"error", "this API answers GET, HEAD, POST and PUT only"}});
    }
    const BodyLimit limit = BodyLimitFor(req, options_);
    uint64_t declared = req.get_header_value<uint64_t>("Content-Length");
    if (declared > limit.bytes) return refuse(413, TooLarge(limit, std::to_string(declared)));
    if (options_.auth == nullptr) return httplib::Server::HandlerResponse::Unhandled;
    ApiAuth::Decision decision = options_.auth->Check(
        req.method, req.path, req.get_header_value("Authorization"), req.get_param_value("grant"));
    if (decision.http_status == 0) return httplib::Server::HandlerResponse::Unhandled;
    if (decision.http_status == 401) res.set_header("WWW-Authenticate", "Bearer");
    return refuse(decision.http_status, json{{"error", decision.error}});
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

  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  s.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    Status ping = store_.Ping();
    if (!ping.ok()) return ReplyError(res, ping);
    // Not ready while no coordinator leads: starting (until its loop runs), or a failover.
    const std::string leader = queue_.leader_url();
    if (leader == "?") {
      return ReplyError(res, Status::Unavailable("no coordinator leads at the moment (starting, "
                                                 "or a failover under way)"));
    }
    res.set_content(
        leader.empty() ? "ready: leading\n" : "ready: standby, the leader is at " + leader + "\n",
        "text/plain");
  });

  const std::string kContext = R"(/v1/contexts/(sha256:[0-9a-f]{64}))";
  // GET also answers HEAD (cpp-httplib routes HEAD to GET handlers without the body).
  // The file is sent from disk a piece at a time.
  s.Get(kContext, [this](const httplib::Request& req, httplib::Response& res) {
    Result<std::unique_ptr<ContextReader>> opened = contexts_.Open(req.matches[1].str());
    if (!opened.ok()) return ReplyError(res, opened.status());
    std::shared_ptr<ContextReader> reader = std::move(*opened);
    res.set_content_provider(reader->size(), "application/x-tar",
                             [reader](size_t offset, size_t length, httplib::DataSink& sink) {
                               std::vector<char> buffer(std::min<size_t>(length, 1 << 20));
                               Result<size_t> read =
                                   reader->ReadAt(offset, buffer.data(), buffer.size());
                               return read.ok() && *read > 0 && sink.write(buffer.data(), *read);
                             });
  });
  // The upload goes to the store as it arrives (through ReadBody, as every POST and PUT
  // body), hashed on the way; only a whole upload with the named digest is kept.
  s.Put(kContext, [this](const httplib::Request& req, httplib::Response& res,
                         const httplib::ContentReader& read) {
    Result<std::unique_ptr<ContextWriter>> writer = contexts_.Put();
    if (!writer.ok()) {
      return ReplyAndClose(res, HttpStatusFor(writer.status()),
                           json{{"error", writer.status().message()}});
    }
    auto append = [&](std::string_view piece) { return (*writer)->Append(piece); };
    if (!ReadBody(req, res, read, options_, append)) return;
    std::string digest = req.matches[1].str();
    Status stored = (*writer)->Commit(digest);
    if (!stored.ok()) return ReplyError(res, stored);
    Reply(res, 201, json{{"digest", digest}, {"size", (*writer)->size()}});
  });

  auto submit = [this](const httplib::Request& req, const std::string& body,
                       httplib::Response& res) {
    std::string key = req.get_header_value("Idempotency-Key");
    if (key.size() > 255) {
      return ReplyError(res, Status::InvalidArgument("Idempotency-Key is longer than 255"));
    }
    std::map<std::string, std::string> secrets;
    Result<BuildSpec> spec = ParseBuildRequest(body, &secrets);
    if (!spec.ok()) return ReplyError(res, spec.status());
    // After parsing, so that a request with several problems is told about its syntax first.
    if (!contexts_.Has(spec->context_digest)) {
      return ReplyError(
          res, Status::InvalidArgument(
                   "field \"context\": the coordinator has no context " + spec->context_digest +
                   "; upload it first (PUT /v1/contexts/" + spec->context_digest + ")"));
    }
    if (!secrets.empty()) {
      // The secrets stay in the memory of the coordinator whose loop sends them.
      if (std::string leader = queue_.leader_url(); !leader.empty()) {
        return ReplyWithLeader(req, res, leader);
      }
    }
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
  };
  s.Post("/v1/builds", WithBody(options_, submit));

  s.Post(R"(/v1/builds/([0-9]+)/cancel)",
         WithBody(options_,
                  [this](const httplib::Request& req, const std::string&, httplib::Response& res) {
                    Result<uint64_t> id = ParseId(req.matches[1].str());
                    if (!id.ok()) return ReplyError(res, id.status());
                    Result<std::vector<JobRecord>> held = store_.CancelBuild(*id);
                    if (!held.ok()) {
                      Status why = held.status();
                      if (why.code() == Status::Code::kNotFound) {
                        // Says whether the retention deleted it.
                        Result<BuildRecord> found = FindBuild(*id);
                        if (!found.ok()) why = found.status();
                      }
                      return ReplyError(res, why);
                    }
                    queue_.BuildCanceled(std::move(*held));
                    spdlog::info("{}build {} canceled on request", LogIds{.build = *id}, *id);
                    auto build = FindBuild(*id);
                    if (!build.ok()) return ReplyError(res, build.status());
                    Reply(res, 200, BuildJson(*build));
                  }));

  s.Post(R"(/v1/agents/([^/]+)/drain)",
         WithBody(options_,
                  [this](const httplib::Request& req, const std::string&, httplib::Response& res) {
                    std::string agent_id = req.matches[1].str();
                    if (std::string leader = queue_.leader_url(); !leader.empty()) {
                      return ReplyWithLeader(req, res, leader);
                    }
                    Status drained = queue_.DrainAgent(agent_id);
                    if (!drained.ok()) return ReplyError(res, drained);
                    Reply(res, 202, json{{"id", agent_id}, {"state", "draining"}});
                  }));
  // Last: any other POST or PUT is answered here, unread, instead of by cpp-httplib's own
  // reader, which would read a chunked body of any size.
  auto not_found = [](const httplib::Request& req, httplib::Response& res,
                      const httplib::ContentReader&) {
    ReplyAndClose(res, 404, json{{"error", "no such endpoint: " + req.method + " " + req.path}});
  };
  s.Post(".*", not_found);
  s.Put(".*", not_found);

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
    auto build = FindBuild(*id);
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
    auto build = FindBuild(*id);
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
                      {"data", chunk.cut_before > 0 ? LogCutMarker(chunk.cut_before) + chunk.data
                                                    : chunk.data},
                      {"cut_before", chunk.cut_before}});
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
    if (std::string leader = queue_.leader_url(); !leader.empty()) {
      return ReplyWithLeader(req, res, leader);
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
    Reply(res, 200, json{{"coordinator", options_.coordinator_name}, {"agents", list}});
  });
}

}  // namespace manifold
