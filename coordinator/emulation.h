// EmulationPolicy: whether a build's jobs may run on an agent that emulates their platform.
//
// A build chooses it at submit (buildx users know the QEMU trade-off: slower, but no native
// host needed); the scheduler reads it for every placement. Plain values; thread-safe.
#pragma once

#include <optional>
#include <string_view>

namespace manifold {

enum class EmulationPolicy {
  kNever,     // native agents only
  kFallback,  // native first; emulated once the job has waited long enough for a native one
  kAllow,     // any agent that serves the platform
};

std::string_view EmulationPolicyName(EmulationPolicy policy);
// Parses "never" | "fallback" | "allow"; nullopt for anything else.
std::optional<EmulationPolicy> ParseEmulationPolicy(std::string_view text);

}  // namespace manifold
