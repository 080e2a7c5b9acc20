#include "cli/build_args.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>

#include "common/validate.h"

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

Result<std::map<std::string, std::string>> ParseSecrets(const std::vector<std::string>& args,
                                                        const EnvLookup& lookup) {
  std::map<std::string, std::string> secrets;
  for (const std::string& arg : args) {
    auto invalid = [&arg](const std::string& why) {
      return Status::InvalidArgument("invalid --secret \"" + arg + "\": " + why +
                                     "; use id=NAME,src=FILE or id=NAME,env=VARIABLE");
    };
    std::map<std::string, std::string> fields;
    std::istringstream parts(arg);
    for (std::string part; std::getline(parts, part, ',');) {
      size_t equals = part.find('=');
      if (equals == std::string::npos || equals == 0)
        return invalid("\"" + part + "\" is not KEY=VALUE");
      std::string key = part.substr(0, equals);
      if (key == "source") key = "src";
      if (key != "id" && key != "src" && key != "env" && key != "type") {
        return invalid("unknown key \"" + key + "\"");
      }
      fields[key] = part.substr(equals + 1);
    }
    const std::string id = fields["id"];
    if (id.empty()) return invalid("the id is missing");
    if (Status s = ValidateSecretId("--secret", id); !s.ok()) return invalid(s.message());
    if (secrets.count(id)) return invalid("the id \"" + id + "\" is given twice");
    std::string type = fields.count("type") ? fields["type"] : fields.count("env") ? "env" : "file";
    if (type != "file" && type != "env") return invalid("type must be file or env");
    if (fields.count("src") && fields.count("env")) return invalid("give src or env, not both");
    std::string bytes;
    if (type == "env") {
      std::string variable = fields.count("env") ? fields["env"] : id;
      std::optional<std::string> value = lookup(variable);
      if (!value) {
        return Status::InvalidArgument("--secret id=" + id + ": the environment variable " +
                                       variable + " is not set");
      }
      bytes = std::move(*value);
    } else {
      std::string file = fields.count("src") ? fields["src"] : id;
      std::ifstream in(file, std::ios::binary);
      if (!in) {
        return Status::InvalidArgument("--secret id=" + id + ": cannot read " + file + ": " +
                                       std::strerror(errno));
      }
      bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      if (in.bad()) return Status::InvalidArgument("--secret id=" + id + ": cannot read " + file);
    }
    if (bytes.size() > kMaxSecretBytes) {
      return Status::InvalidArgument("--secret id=" + id + " is " + std::to_string(bytes.size()) +
                                     " bytes; a build secret may be at most " +
                                     std::to_string(kMaxSecretBytes) + " bytes");
    }
    secrets[id] = std::move(bytes);
  }
  if (secrets.size() > kMaxSecrets) {
    return Status::InvalidArgument("at most " + std::to_string(kMaxSecrets) +
                                   " --secret options are allowed");
  }
  return secrets;
}

}  // namespace manifold
