// Build arguments from the command line, with docker's rules.
//
// `--build-arg K=V` sets K to V; `--build-arg K` takes K's value from the caller's
// environment and is left out when the environment has no K, as buildx does, so CI lines
// such as `--build-arg HTTP_PROXY` carry over. Plain functions, safe from any thread as
// long as `lookup` is.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace manifold {

// Returns the value of an environment variable, or nullopt when it is not set.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// The process environment (getenv).
std::optional<std::string> LookupProcessEnv(const std::string& name);

// Whether `name` is one the coordinator accepts: [A-Za-z_][A-Za-z0-9_]*, at most 255.
bool IsBuildArgName(const std::string& name);

// Parses every `--build-arg` value in order; a later K overrides an earlier one. An empty
// name ("=V" or "") or one IsBuildArgName rejects is an InvalidArgument quoting the argument,
// so a typo fails before the context is uploaded.
Result<std::map<std::string, std::string>> ParseBuildArgs(const std::vector<std::string>& args,
                                                          const EnvLookup& lookup);

}  // namespace manifold
