// Validate: checks on the names and free text that arrive in build requests (build-arg
// names, label and annotation keys and values, build stage names), shared by the API and
// the CLI so that both refuse the same things with the same words.
//
// Each check returns Ok or an InvalidArgument whose message starts with the field
// (`field "labels": ...`), quotes the offending value (cut to a readable length) and says
// what is allowed, so an HTTP 400 built from it tells a person what to change. Image
// references and platforms have grammars of their own (reference.h, platform.h).
// Plain functions; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace manifold {

// A Dockerfile ARG name: a letter or '_', then letters, digits and '_'; 1 to 255 bytes.
Status ValidateBuildArgName(std::string_view field, std::string_view name);

// A label or annotation key as OCI recommends them (reverse-DNS, "org.opencontainers.
// image.source"): 1 to 255 bytes of letters, digits, '.', '-', '_' and '/', starting and
// ending with a letter or digit.
Status ValidateLabelKey(std::string_view field, std::string_view key);

// A build stage name (--target): a letter, then letters, digits, '.', '-' and '_'; at most
// 128 bytes, as BuildKit accepts them.
Status ValidateStageName(std::string_view field, std::string_view name);

// A build secret's id (--secret id=NAME): 1 to 128 bytes of letters, digits, '.', '-' and
// '_', starting with a letter or digit, so that it is a plain file name under /run/secrets.
Status ValidateSecretId(std::string_view field, std::string_view id);

// Build secrets are small (tokens, keys, credential files): at most this many bytes each, as
// BuildKit allows, and at most kMaxSecrets per build.
inline constexpr size_t kMaxSecretBytes = 500 * 1024;
inline constexpr size_t kMaxSecrets = 64;

// Free text (label and annotation values, build-arg values, paths): valid UTF-8, no NUL
// (argv, C strings and PostgreSQL text all end at one), at most max_bytes.
Status ValidateText(std::string_view field, std::string_view value, size_t max_bytes);

// A build's RUN network as buildx names it (--network): "default", "none" or "host".
// Returns what AssignMsg carries: "" for default (the agent's sandbox network), else the
// name. Messages name the value, not a field, so the CLI and the API can both use them.
Result<std::string> ParseBuildNetwork(std::string_view name);

// A build's entitlement (--allow), as buildx names them. Only "network.host" is supported:
// "security.insecure" (privileged steps) is refused, as is any other.
Status ValidateEntitlement(std::string_view name);
inline constexpr size_t kMaxEntitlements = 8;

// Host networking needs the network.host entitlement, as in buildx; the message says to add
// --allow network.host and that the agent must allow it too.
Status CheckNetworkEntitlement(std::string_view network,
                               const std::vector<std::string>& entitlements);

}  // namespace manifold
