#include "coordinator/build_request.h"

#include <algorithm>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "common/digest.h"
#include "common/docker_config.h"
#include "common/platform.h"
#include "common/reference.h"
#include "common/registry_cache.h"
#include "common/validate.h"
#include "coordinator/emulation.h"

namespace manifold {

using nlohmann::json;

namespace {

// "network", "entitlements" and "limits": how the build's RUN steps are sandboxed.
Status ParseSandbox(const json& request, BuildSpec* spec) {
  if (auto it = request.find("network"); it != request.end() && !it->is_null()) {
    if (!it->is_string()) return Status::InvalidArgument("field \"network\" must be a string");
    Result<std::string> network = ParseBuildNetwork(it->get<std::string>());
    if (!network.ok()) return network.status().WithContext("field \"network\"");
    spec->network = *network;
  }
  if (auto it = request.find("entitlements"); it != request.end() && !it->is_null()) {
    if (!it->is_array() || it->size() > kMaxEntitlements) {
      return Status::InvalidArgument("field \"entitlements\" must be a list of at most " +
                                     std::to_string(kMaxEntitlements) +
                                     " strings, e.g. [\"network.host\"]");
    }
    for (const json& item : *it) {
      if (!item.is_string()) {
        return Status::InvalidArgument("field \"entitlements\" must contain only strings");
      }
      std::string name = item.get<std::string>();
      if (Status s = ValidateEntitlement(name); !s.ok()) {
        return s.WithContext("field \"entitlements\"");
      }
      auto& names = spec->entitlements;
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
  }
  if (Status s = CheckNetworkEntitlement(spec->network, spec->entitlements); !s.ok()) {
    return s.WithContext("field \"network\"");
  }
  auto it = request.find("limits");
  if (it == request.end() || it->is_null()) return Status::Ok();
  if (!it->is_object()) {
    return Status::InvalidArgument(
        "field \"limits\" must be an object such as {\"memory_bytes\": 1073741824, "
        "\"cpu_millis\": 1500}");
  }
  const std::pair<const char*, uint64_t*> known[] = {
      {"memory_bytes", &spec->limits.memory_bytes},
      {"cpu_millis", &spec->limits.cpu_millis},
      {"pids", &spec->limits.pids},
      {"disk_bytes", &spec->limits.disk_bytes},
  };
  for (const auto& item : it->items()) {
    // Named copies, not structured bindings: clang 14 (the fuzz build) cannot capture those.
    const std::string& key = item.key();
    const nlohmann::json& value = item.value();
    auto field = std::find_if(std::begin(known), std::end(known),
                              [&](const auto& entry) { return key == entry.first; });
    if (field == std::end(known)) {
      return Status::InvalidArgument("field \"limits\": unknown limit \"" + key.substr(0, 64) +
                                     "\"; the limits are memory_bytes, cpu_millis, pids and "
                                     "disk_bytes");
    }
    if (!value.is_number_unsigned() || value.get<uint64_t>() > kMaxJobLimit) {
      return Status::InvalidArgument("field \"limits\": \"" + key +
                                     "\" must be a whole number from 0 (the agent's default) "
                                     "to " +
                                     std::to_string(kMaxJobLimit));
    }
    *field->second = value.get<uint64_t>();
  }
  return Status::Ok();
}

// "cache_from" (a list of refs), "cache_to" (a ref) and "cache_mode" ("min" or "max"): the
// build's registry cache, as the CLI's --cache-from/--cache-to give it.
Status ParseRegistryCache(const json& request, BuildSpec* spec) {
  constexpr size_t kMaxCacheFrom = 16;
  if (auto it = request.find("cache_from"); it != request.end() && !it->is_null()) {
    if (!it->is_array() || it->size() > kMaxCacheFrom) {
      return Status::InvalidArgument("field \"cache_from\" must be a list of at most " +
                                     std::to_string(kMaxCacheFrom) +
                                     " cache refs, e.g. [\"registry.example/cache/app\"]");
    }
    for (const json& item : *it) {
      if (!item.is_string()) {
        return Status::InvalidArgument("field \"cache_from\" must contain only strings");
      }
      std::string ref = item.get<std::string>();
      if (Status s = ValidateCacheRef(ref); !s.ok()) return s.WithContext("field \"cache_from\"");
      spec->cache_from.push_back(std::move(ref));
    }
  }
  if (auto it = request.find("cache_to"); it != request.end() && !it->is_null()) {
    if (!it->is_string()) return Status::InvalidArgument("field \"cache_to\" must be a string");
    spec->cache_to = it->get<std::string>();
    if (Status s = ValidateCacheRef(spec->cache_to); !s.ok()) {
      return s.WithContext("field \"cache_to\"");
    }
  }
  if (auto it = request.find("cache_mode"); it != request.end() && !it->is_null()) {
    if (!it->is_string() || (*it != "min" && *it != "max")) {
      return Status::InvalidArgument("field \"cache_mode\" must be \"min\" or \"max\"");
    }
    spec->cache_mode = it->get<std::string>();
  }
  return Status::Ok();
}

}  // namespace

Result<BuildSpec> ParseBuildRequest(const std::string& body,
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
  if (spec.platforms.size() > kMaxPlatforms) {
    return Status::InvalidArgument("field \"platforms\" lists more than " +
                                   std::to_string(kMaxPlatforms) + " platforms");
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
    if (!it->is_number_integer() || it->get<int64_t>() < 1 ||
        it->get<int64_t>() > kMaxJobTimeoutSeconds) {
      return Status::InvalidArgument(
          "field \"job_timeout_seconds\" must be a whole number of seconds from 1 to " +
          std::to_string(kMaxJobTimeoutSeconds));
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
  if (Status s = ParseSandbox(request, &spec); !s.ok()) return s;
  if (Status s = ParseRegistryCache(request, &spec); !s.ok()) return s;
  return spec;
}

}  // namespace manifold
