#include "cli/build_args.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <regex>
#include <sstream>

namespace manifold {

bool IsBuildArgName(const std::string& name) {
  if (name.empty() || name.size() > 255 || std::isdigit(static_cast<unsigned char>(name[0]))) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return c == '_' || std::isalnum(static_cast<unsigned char>(c));
  });
}

std::optional<std::string> LookupProcessEnv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

Result<std::map<std::string, std::string>> ParseBuildArgs(const std::vector<std::string>& args,
                                                          const EnvLookup& lookup) {
  std::map<std::string, std::string> result;
  for (const std::string& arg : args) {
    size_t equals = arg.find('=');
    std::string name = arg.substr(0, equals);
    if (name.empty()) {
      return Status::InvalidArgument("invalid --build-arg \"" + arg +
                                     "\": the name is empty; use NAME=VALUE or NAME");
    }
    if (!IsBuildArgName(name)) {
      return Status::InvalidArgument("invalid --build-arg \"" + arg + "\": the name \"" + name +
                                     "\" must be letters, digits and '_', not starting with a "
                                     "digit");
    }
    if (equals != std::string::npos) {
      result[name] = arg.substr(equals + 1);
      continue;
    }
    // Unset in the environment: buildx sends nothing for it (and keeps an earlier K=V).
    std::optional<std::string> value = lookup(name);
    if (value.has_value()) result[name] = *value;
  }
  return result;
}

bool IsMetadataKey(const std::string& key) {
  return !key.empty() && key.size() <= 255 && std::all_of(key.begin(), key.end(), [](char c) {
    return c > ' ' && c < 0x7f && c != '=';
  });
}

Result<std::map<std::string, std::string>> ParseLabels(const std::vector<std::string>& args) {
  std::map<std::string, std::string> labels;
  for (const std::string& arg : args) {
    size_t equals = arg.find('=');
    std::string key = arg.substr(0, equals);
    if (!IsMetadataKey(key)) {
      return Status::InvalidArgument("invalid --label \"" + arg +
                                     "\": use KEY=VALUE with a KEY of printable characters, "
                                     "without spaces");
    }
    labels[key] = equals == std::string::npos ? "" : arg.substr(equals + 1);
  }
  return labels;
}

Result<Annotations> ParseAnnotations(const std::vector<std::string>& args) {
  // buildx's grammar for the part before '=': an optional "TYPES[PLATFORM]:" prefix of
  // lower-case type names, then the key.
  static const std::regex kKey(R"(^(?:([a-z,-]+)(\[[^\]]*\])?:)?(\S+)$)");
  Annotations annotations;
  for (const std::string& arg : args) {
    auto invalid = [&arg](const std::string& why) {
      return Status::InvalidArgument("invalid --annotation \"" + arg + "\": " + why);
    };
    size_t equals = arg.find('=');
    if (equals == std::string::npos) {
      return invalid("use KEY=VALUE, manifest:KEY=VALUE or index:KEY=VALUE");
    }
    std::string value = arg.substr(equals + 1);
    std::smatch match;
    std::string left = arg.substr(0, equals);
    if (!std::regex_match(left, match, kKey) || !IsMetadataKey(match[3].str())) {
      return invalid("the key must be printable characters without spaces");
    }
    if (match[2].matched) {
      return invalid(
          "per-platform annotations are not supported; manifest:KEY=VALUE annotates the "
          "manifest of every platform");
    }
    bool to_manifest = !match[1].matched, to_index = false;
    std::stringstream types(match[1].str());
    for (std::string type; std::getline(types, type, ',');) {
      if (type == "manifest") {
        to_manifest = true;
      } else if (type == "index") {
        to_index = true;
      } else if (type == "manifest-descriptor" || type == "index-descriptor") {
        return invalid(type + " annotations are not supported; use manifest: or index:");
      } else {
        return invalid("unknown type \"" + type + "\"; use manifest: or index:");
      }
    }
    if (to_manifest) annotations.manifest[match[3].str()] = value;
    if (to_index) annotations.index[match[3].str()] = value;
  }
  return annotations;
}

}  // namespace manifold
