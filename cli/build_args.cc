#include "cli/build_args.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

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

}  // namespace manifold
