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

// Whether `key` may name a label or an annotation: 1 to 255 printable ASCII characters,
// no space and no '=' (the coordinator applies the same rule).
bool IsMetadataKey(const std::string& key);

// Parses every `--label` value: KEY=VALUE, or KEY alone for an empty value (as docker
// build). A later KEY overrides an earlier one; a bad key is an InvalidArgument.
Result<std::map<std::string, std::string>> ParseLabels(const std::vector<std::string>& args);

// Annotations by where buildx puts them.
struct Annotations {
  std::map<std::string, std::string> manifest;  // each platform's image manifest
  std::map<std::string, std::string> index;     // the image index under the tags
};

// Parses every `--annotation` value in buildx's forms: KEY=VALUE and manifest:KEY=VALUE
// go on each platform's manifest, index:KEY=VALUE on the index, and "manifest,index:"
// on both. buildx's other types (manifest-descriptor, index-descriptor) and per-platform
// forms (manifest[linux/amd64]:KEY=VALUE) are refused with a message saying so, as is a
// value without '=' or a bad key.
Result<Annotations> ParseAnnotations(const std::vector<std::string>& args);

// Parses every `--secret` value in buildx's form, comma-separated KEY=VALUE: id=ID (required),
// then either src=FILE (or source=FILE; type=file, the default) or env=VAR (type=env). With
// neither, the id names the file (type=file) or the variable (type=env), as in buildx. Reads
// each secret's bytes now, so a missing file fails before anything is uploaded. Errors
// name the id and the file or variable, never the bytes. Returns id -> bytes.
Result<std::map<std::string, std::string>> ParseSecrets(const std::vector<std::string>& args,
                                                        const EnvLookup& lookup);

}  // namespace manifold
