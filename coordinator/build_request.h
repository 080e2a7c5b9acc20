// BuildRequest: turns the body of POST /v1/builds, the API's main external input, into a
// BuildSpec and the build's secrets.
//
// Every field is validated on its own (type, bounds, grammar) and a refusal is an
// InvalidArgument whose message names the field, so a client is told what to change and
// nothing malformed reaches the store or the agents. Pure (no I/O: whether the context was
// uploaded is the caller's question), so it is fuzzed on its own; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "common/status.h"
#include "coordinator/build.h"

namespace manifold {

// Bounds on the fields of a build request (secrets have theirs in common/validate.h).
inline constexpr size_t kMaxDockerfileBytes = 1 << 20;
inline constexpr size_t kMaxPathBytes = 4096;          // dockerfile_path, source, revision
inline constexpr size_t kMaxMapValueBytes = 64 << 10;  // a build arg, label or annotation value
inline constexpr size_t kMaxMapEntries = 1000;         // build args, labels or annotations
inline constexpr size_t kMaxPlatforms = 32;            // after removing duplicates
inline constexpr size_t kMaxTags = 64;
inline constexpr uint32_t kMaxJobTimeoutSeconds = 7 * 86400;
// Each job limit: 2^53 - 1, so that every JSON client reads it exactly (and a PostgreSQL
// BIGINT holds it).
inline constexpr uint64_t kMaxJobLimit = (uint64_t{1} << 53) - 1;

// Parses a JSON request body into a BuildSpec and fills `secrets` (id -> bytes). The bytes
// stay out of the spec, which is stored; the spec keeps only their ids.
Result<BuildSpec> ParseBuildRequest(const std::string& body,
                                    std::map<std::string, std::string>* secrets);

}  // namespace manifold
