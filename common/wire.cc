#include "common/wire.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common/digest.h"
#include "common/validate.h"
#include "schema/protocol.capnp.h"

namespace manifold {
namespace {

// Values from the network (texts, platforms, digests) are validated while decoding, once,
// so nothing past the boundary sees a malformed one.
class DecodeError : public std::exception {
 public:
  explicit DecodeError(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

// Text never carries a NUL byte: C strings, argv and PostgreSQL text all end at one, so a
// string with a NUL would mean different things to different parts.
std::string ToString(capnp::Text::Reader text) {
  if (std::memchr(text.cStr(), '\0', text.size()) != nullptr) {
    throw DecodeError("a text field holds a NUL byte");
  }
  return std::string(text.cStr(), text.size());
}

// What the encoder writes for a string. Cap'n Proto converts a std::string through
// c_str(), which would silently cut it at a NUL; instead each NUL becomes U+FFFD, so an
// encoder never emits a frame its peer must refuse and nothing after a NUL is lost.
std::string AsText(const std::string& value) {
  if (value.find('\0') == std::string::npos) return value;
  std::string text;
  for (char c : value) {
    if (c == '\0') {
      text += "\xEF\xBF\xBD";
    } else {
      text += c;
    }
  }
  return text;
}

std::string ToString(capnp::Data::Reader data) {
  return std::string(reinterpret_cast<const char*>(data.begin()), data.size());
}

capnp::Data::Reader AsData(const std::string& bytes) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size());
}

std::string Flatten(capnp::MessageBuilder& builder) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
  kj::ArrayPtr<const kj::byte> bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

Platform ReadPlatform(proto::Platform::Reader reader) {
  std::string text = ToString(reader.getOs()) + "/" + ToString(reader.getArchitecture());
  if (reader.getVariant().size() > 0) text += "/" + ToString(reader.getVariant());
  Result<Platform> platform = ParsePlatform(text);
  if (!platform.ok()) throw DecodeError(platform.status().message());
  return *platform;
}

void WritePlatform(const Platform& platform, proto::Platform::Builder builder) {
  builder.setOs(AsText(platform.os));
  builder.setArchitecture(AsText(platform.architecture));
  builder.setVariant(AsText(platform.variant));
}

JobRef ReadJob(proto::JobRef::Reader reader) {
  return JobRef{reader.getJobId(), reader.getAttempt()};
}

void WriteJob(const JobRef& job, proto::JobRef::Builder builder) {
  builder.setJobId(job.job_id);
  builder.setAttempt(job.attempt);
}

std::vector<JobRef> ReadJobs(capnp::List<proto::JobRef>::Reader list) {
  std::vector<JobRef> jobs;
  jobs.reserve(list.size());
  for (auto job : list) jobs.push_back(ReadJob(job));
  return jobs;
}

void WriteJobs(const std::vector<JobRef>& jobs, capnp::List<proto::JobRef>::Builder list) {
  for (size_t i = 0; i < jobs.size(); ++i) WriteJob(jobs[i], list[i]);
}

std::map<std::string, std::string> ReadKeyValues(capnp::List<proto::KeyValue>::Reader list) {
  std::map<std::string, std::string> map;
  for (auto kv : list) map[ToString(kv.getKey())] = ToString(kv.getValue());
  return map;
}

void WriteKeyValues(const std::map<std::string, std::string>& map,
                    capnp::List<proto::KeyValue>::Builder list) {
  size_t i = 0;
  for (const auto& [key, value] : map) {
    list[i].setKey(AsText(key));
    list[i].setValue(AsText(value));
    ++i;
  }
}

constexpr uint64_t kTraversalWordsPerFrameWord = 4;
constexpr uint64_t kTraversalSlackWords = 256;

// Runs `read` over a verified message root, turning every way a frame can be malformed
// (short, unaligned length, limits exceeded, bad pointers, bad values) into one Status.
template <typename Root, typename T, typename Read>
Result<T> DecodeFrame(std::string_view frame, const WireLimits& limits, const char* what,
                      Read read) {
  if (frame.size() > limits.max_frame_bytes) {
    return Status::InvalidArgument(std::string(what) + " frame of " + std::to_string(frame.size()) +
                                   " bytes exceeds the limit");
  }
  if (frame.empty() || frame.size() % sizeof(capnp::word) != 0) {
    return Status::InvalidArgument(std::string(what) + " frame of " + std::to_string(frame.size()) +
                                   " bytes is not a Cap'n Proto message");
  }
  // Frames from TCP are usually not 8-byte aligned; the reader requires alignment.
  kj::Array<capnp::word> aligned;
  kj::ArrayPtr<const capnp::word> words;
  if (reinterpret_cast<uintptr_t>(frame.data()) % alignof(capnp::word) == 0) {
    words = kj::ArrayPtr<const capnp::word>(reinterpret_cast<const capnp::word*>(frame.data()),
                                            frame.size() / sizeof(capnp::word));
  } else {
    aligned = kj::heapArray<capnp::word>(frame.size() / sizeof(capnp::word));
    std::memcpy(aligned.begin(), frame.data(), frame.size());
    words = aligned.asPtr();
  }
  capnp::ReaderOptions options;
  // Cap'n Proto charges a list of zero-size elements one word per element, so a frame of
  // a few words can claim millions of them (a 200-byte heartbeat listing 2 million running
  // jobs, found by tests/fuzz). Our messages are trees read about once, so the walk is
  // bounded by a multiple of the frame's own size as well as by the configured limit.
  options.traversalLimitInWords = std::min<uint64_t>(
      limits.traversal_limit_words,
      kTraversalWordsPerFrameWord * (frame.size() / sizeof(capnp::word)) + kTraversalSlackWords);
  options.nestingLimit = limits.nesting_limit;
  try {
    capnp::FlatArrayMessageReader reader(words, options);
    return read(reader.getRoot<Root>());
  } catch (const kj::Exception& e) {
    return Status::InvalidArgument(std::string("malformed ") + what +
                                   " message: " + e.getDescription().cStr());
  } catch (const DecodeError& e) {
    return Status::InvalidArgument(std::string("invalid ") + what + " message: " + e.what());
  }
}

}  // namespace

const char* MessageName(const AgentMessage& message) {
  static const char* const kNames[] = {"hello",     "heartbeat", "jobUpdate", "logChunk",
                                       "jobResult", "draining",  "goodbye"};
  return kNames[message.index()];
}

const char* MessageName(const CoordinatorMessage& message) {
  static const char* const kNames[] = {"welcome", "assign", "cancel", "ack",
                                       "reject",  "drain",  "logFlow"};
  return kNames[message.index()];
}

std::string EncodeAgentMessage(const AgentMessage& message) {
  capnp::MallocMessageBuilder builder;
  auto root = builder.initRoot<proto::AgentMessage>();
  struct Visitor {
    proto::AgentMessage::Builder root;
    void operator()(const HelloMsg& m) {
      auto hello = root.initHello();
      hello.setProtocolVersion(m.protocol_version);
      hello.setAgentId(AsText(m.agent_id));
      hello.setVersion(AsText(m.version));
      hello.setHostname(AsText(m.hostname));
      auto offers = hello.initPlatforms(static_cast<unsigned>(m.platforms.size()));
      for (size_t i = 0; i < m.platforms.size(); ++i) {
        WritePlatform(m.platforms[i].platform, offers[i].initPlatform());
        offers[i].setEmulated(m.platforms[i].emulated);
      }
      hello.setSlots(m.slots);
      WriteKeyValues(m.labels, hello.initLabels(static_cast<unsigned>(m.labels.size())));
      WriteJobs(m.running_jobs,
                hello.initRunningJobs(static_cast<unsigned>(m.running_jobs.size())));
    }
    void operator()(const HeartbeatMsg& m) {
      auto heartbeat = root.initHeartbeat();
      WriteJobs(m.running_jobs,
                heartbeat.initRunningJobs(static_cast<unsigned>(m.running_jobs.size())));
      heartbeat.setAssignsReceived(m.assigns_received);
    }
    void operator()(const JobUpdateMsg& m) {
      auto update = root.initJobUpdate();
      WriteJob(m.job, update.initJob());
      switch (m.phase) {
        case JobPhase::kAccepted:
          update.setPhase(proto::JobPhase::ACCEPTED);
          break;
        case JobPhase::kBuilding:
          update.setPhase(proto::JobPhase::BUILDING);
          break;
        case JobPhase::kPushing:
          update.setPhase(proto::JobPhase::PUSHING);
          break;
      }
    }
    void operator()(const LogChunkMsg& m) {
      auto chunk = root.initLogChunk();
      WriteJob(m.job, chunk.initJob());
      chunk.setSeq(m.seq);
      chunk.setData(AsData(m.data));
    }
    void operator()(const JobResultMsg& m) {
      auto result = root.initJobResult();
      WriteJob(m.job, result.initJob());
      if (m.succeeded) {
        auto image = result.initImage();
        image.setMediaType(AsText(m.image.media_type));
        image.setDigest(AsText(m.image.digest));
        image.setSize(m.image.size);
      } else {
        auto failure = result.initFailure();
        failure.setMessage(AsText(m.error));
        failure.setRetryable(m.retryable);
        failure.setRefused(m.refused);
      }
      result.setCachePushed(AsText(m.cache_pushed));
    }
    void operator()(const DrainingMsg&) { root.setDraining(); }
    void operator()(const GoodbyeMsg&) { root.setGoodbye(); }
  };
  std::visit(Visitor{root}, message);
  return Flatten(builder);
}

Result<AgentMessage> DecodeAgentMessage(std::string_view frame, const WireLimits& limits) {
  return DecodeFrame<proto::AgentMessage, AgentMessage>(
      frame, limits, "agent", [](proto::AgentMessage::Reader root) -> AgentMessage {
        switch (root.which()) {
          case proto::AgentMessage::HELLO: {
            auto hello = root.getHello();
            HelloMsg m;
            m.protocol_version = hello.getProtocolVersion();
            m.agent_id = ToString(hello.getAgentId());
            m.version = ToString(hello.getVersion());
            m.hostname = ToString(hello.getHostname());
            for (auto offer : hello.getPlatforms()) {
              m.platforms.push_back({ReadPlatform(offer.getPlatform()), offer.getEmulated()});
            }
            m.slots = hello.getSlots();
            m.labels = ReadKeyValues(hello.getLabels());
            m.running_jobs = ReadJobs(hello.getRunningJobs());
            return m;
          }
          case proto::AgentMessage::HEARTBEAT:
            return HeartbeatMsg{ReadJobs(root.getHeartbeat().getRunningJobs()),
                                root.getHeartbeat().getAssignsReceived()};
          case proto::AgentMessage::JOB_UPDATE: {
            auto update = root.getJobUpdate();
            JobUpdateMsg m{ReadJob(update.getJob()), JobPhase::kAccepted};
            switch (update.getPhase()) {
              case proto::JobPhase::ACCEPTED:
                m.phase = JobPhase::kAccepted;
                break;
              case proto::JobPhase::BUILDING:
                m.phase = JobPhase::kBuilding;
                break;
              case proto::JobPhase::PUSHING:
                m.phase = JobPhase::kPushing;
                break;
              default:
                throw DecodeError("unknown job phase");
            }
            return m;
          }
          case proto::AgentMessage::LOG_CHUNK: {
            auto chunk = root.getLogChunk();
            return LogChunkMsg{ReadJob(chunk.getJob()), chunk.getSeq(), ToString(chunk.getData())};
          }
          case proto::AgentMessage::JOB_RESULT: {
            auto result = root.getJobResult();
            JobResultMsg m;
            m.job = ReadJob(result.getJob());
            switch (result.which()) {
              case proto::JobResult::IMAGE: {
                auto image = result.getImage();
                m.succeeded = true;
                m.image = {ToString(image.getMediaType()), ToString(image.getDigest()),
                           image.getSize()};
                if (!IsValidDigest(m.image.digest)) {
                  throw DecodeError("result digest \"" + m.image.digest + "\" is not sha256");
                }
                break;
              }
              case proto::JobResult::FAILURE:
                m.error = ToString(result.getFailure().getMessage());
                m.retryable = result.getFailure().getRetryable();
                m.refused = result.getFailure().getRefused();
                break;
              default:
                throw DecodeError("unknown job result kind");
            }
            m.cache_pushed = ToString(result.getCachePushed());
            return m;
          }
          case proto::AgentMessage::DRAINING:
            return DrainingMsg{};
          case proto::AgentMessage::GOODBYE:
            return GoodbyeMsg{};
        }
        throw DecodeError("unknown message kind " + std::to_string(root.which()));
      });
}

std::string EncodeCoordinatorMessage(const CoordinatorMessage& message) {
  capnp::MallocMessageBuilder builder;
  auto root = builder.initRoot<proto::CoordinatorMessage>();
  struct Visitor {
    proto::CoordinatorMessage::Builder root;
    void operator()(const WelcomeMsg& m) {
      auto welcome = root.initWelcome();
      welcome.setSessionId(AsText(m.session_id));
      welcome.setHeartbeatIntervalMs(m.heartbeat_interval_ms);
      auto warm = welcome.initWarmStartCaches(static_cast<unsigned>(m.warm_start_caches.size()));
      for (size_t i = 0; i < m.warm_start_caches.size(); ++i) {
        warm[i].setRepository(AsText(m.warm_start_caches[i].repository));
        WritePlatform(m.warm_start_caches[i].platform, warm[i].initPlatform());
        warm[i].setCacheRef(AsText(m.warm_start_caches[i].cache_ref));
      }
      welcome.setCacheTtlSeconds(m.cache_ttl_seconds);
    }
    void operator()(const AssignMsg& m) {
      auto assign = root.initAssign();
      WriteJob(m.job, assign.initJob());
      assign.setBuildId(m.build_id);
      WritePlatform(m.platform, assign.initPlatform());
      assign.setContextDigest(AsText(m.context_digest));
      assign.setContextUrl(AsText(m.context_url));
      assign.setDockerfile(AsText(m.dockerfile));
      assign.setDockerfilePath(AsText(m.dockerfile_path));
      WriteKeyValues(m.build_args,
                     assign.initBuildArgs(static_cast<unsigned>(m.build_args.size())));
      assign.setTarget(AsText(m.target));
      auto repositories = assign.initRepositories(static_cast<unsigned>(m.repositories.size()));
      for (size_t i = 0; i < m.repositories.size(); ++i)
        repositories.set(i, AsText(m.repositories[i]));
      WriteKeyValues(m.labels, assign.initLabels(static_cast<unsigned>(m.labels.size())));
      WriteKeyValues(m.annotations,
                     assign.initAnnotations(static_cast<unsigned>(m.annotations.size())));
      assign.setNoCache(m.no_cache);
      assign.setPull(m.pull);
      auto secrets = assign.initSecrets(static_cast<unsigned>(m.secrets.size()));
      unsigned i = 0;
      for (const auto& [id, value] : m.secrets) {
        secrets[i].setId(AsText(id));
        secrets[i].setValue(AsData(value));
        ++i;
      }
      assign.setNetwork(AsText(m.network));
      auto entitlements = assign.initEntitlements(static_cast<unsigned>(m.entitlements.size()));
      for (size_t e = 0; e < m.entitlements.size(); ++e)
        entitlements.set(e, AsText(m.entitlements[e]));
      auto limits = assign.initLimits();
      limits.setMemoryBytes(m.limits.memory_bytes);
      limits.setCpuMillis(m.limits.cpu_millis);
      limits.setPids(m.limits.pids);
      limits.setDiskBytes(m.limits.disk_bytes);
      auto cache = assign.initCache();
      auto from = cache.initFrom(static_cast<unsigned>(m.cache.from.size()));
      for (size_t f = 0; f < m.cache.from.size(); ++f) from.set(f, AsText(m.cache.from[f]));
      cache.setTo(AsText(m.cache.to));
      cache.setMode(AsText(m.cache.mode));
      cache.setTtlSeconds(m.cache.ttl_seconds);
    }
    void operator()(const CancelMsg& m) { WriteJob(m.job, root.initCancel()); }
    void operator()(const AckMsg& m) { WriteJob(m.job, root.initAck()); }
    void operator()(const RejectMsg& m) {
      auto reject = root.initReject();
      reject.setReason(AsText(m.reason));
      reject.setFatal(m.fatal);
    }
    void operator()(const DrainMsg&) { root.setDrain(); }
    void operator()(const LogFlowMsg& m) { root.initLogFlow().setHold(m.hold); }
  };
  std::visit(Visitor{root}, message);
  return Flatten(builder);
}

Result<CoordinatorMessage> DecodeCoordinatorMessage(std::string_view frame,
                                                    const WireLimits& limits) {
  return DecodeFrame<proto::CoordinatorMessage, CoordinatorMessage>(
      frame, limits, "coordinator",
      [](proto::CoordinatorMessage::Reader root) -> CoordinatorMessage {
        switch (root.which()) {
          case proto::CoordinatorMessage::WELCOME: {
            auto welcome = root.getWelcome();
            WelcomeMsg m;
            m.session_id = ToString(welcome.getSessionId());
            m.heartbeat_interval_ms = welcome.getHeartbeatIntervalMs();
            for (auto warm : welcome.getWarmStartCaches()) {
              m.warm_start_caches.push_back({ToString(warm.getRepository()),
                                             ReadPlatform(warm.getPlatform()),
                                             ToString(warm.getCacheRef())});
            }
            m.cache_ttl_seconds = welcome.getCacheTtlSeconds();
            return m;
          }
          case proto::CoordinatorMessage::ASSIGN: {
            auto assign = root.getAssign();
            AssignMsg m;
            m.job = ReadJob(assign.getJob());
            m.build_id = assign.getBuildId();
            m.platform = ReadPlatform(assign.getPlatform());
            m.context_digest = ToString(assign.getContextDigest());
            if (!IsValidDigest(m.context_digest)) {
              throw DecodeError("context digest \"" + m.context_digest + "\" is not sha256");
            }
            m.context_url = ToString(assign.getContextUrl());
            m.dockerfile = ToString(assign.getDockerfile());
            m.dockerfile_path = ToString(assign.getDockerfilePath());
            m.build_args = ReadKeyValues(assign.getBuildArgs());
            m.target = ToString(assign.getTarget());
            for (auto repository : assign.getRepositories()) {
              m.repositories.push_back(ToString(repository));
            }
            m.labels = ReadKeyValues(assign.getLabels());
            m.annotations = ReadKeyValues(assign.getAnnotations());
            m.no_cache = assign.getNoCache();
            m.pull = assign.getPull();
            for (auto secret : assign.getSecrets()) {
              std::string id = ToString(secret.getId());
              // The agent names files after nothing it is sent, but a bad id is a bad frame.
              if (!ValidateSecretId("secrets", id).ok() ||
                  secret.getValue().size() > kMaxSecretBytes) {
                throw DecodeError("secret \"" + id.substr(0, 64) + "\" is invalid");
              }
              m.secrets[std::move(id)] = ToString(secret.getValue());
            }
            // The same checks as at submit: the agent never sees a network it cannot name
            // or an entitlement it does not know.
            m.network = ToString(assign.getNetwork());
            if (!m.network.empty() && m.network != "none" && m.network != "host") {
              throw DecodeError("network \"" + m.network.substr(0, 64) + "\" is invalid");
            }
            if (assign.getEntitlements().size() > kMaxEntitlements) {
              throw DecodeError("too many entitlements");
            }
            for (auto entitlement : assign.getEntitlements()) {
              m.entitlements.push_back(ToString(entitlement));
              if (Status s = ValidateEntitlement(m.entitlements.back()); !s.ok()) {
                throw DecodeError(s.message());
              }
            }
            auto limits = assign.getLimits();
            m.limits = {limits.getMemoryBytes(), limits.getCpuMillis(), limits.getPids(),
                        limits.getDiskBytes()};
            auto cache = assign.getCache();
            for (auto from : cache.getFrom()) m.cache.from.push_back(ToString(from));
            m.cache.to = ToString(cache.getTo());
            m.cache.mode = ToString(cache.getMode());
            if (m.cache.mode.empty()) m.cache.mode = "min";
            if (m.cache.mode != "min" && m.cache.mode != "max") {
              throw DecodeError("cache mode \"" + m.cache.mode.substr(0, 16) + "\" is invalid");
            }
            m.cache.ttl_seconds = cache.getTtlSeconds();
            return m;
          }
          case proto::CoordinatorMessage::CANCEL:
            return CancelMsg{ReadJob(root.getCancel())};
          case proto::CoordinatorMessage::ACK:
            return AckMsg{ReadJob(root.getAck())};
          case proto::CoordinatorMessage::REJECT:
            return RejectMsg{ToString(root.getReject().getReason()), root.getReject().getFatal()};
          case proto::CoordinatorMessage::DRAIN:
            return DrainMsg{};
          case proto::CoordinatorMessage::LOG_FLOW:
            return LogFlowMsg{root.getLogFlow().getHold()};
        }
        throw DecodeError("unknown message kind " + std::to_string(root.which()));
      });
}

}  // namespace manifold
