#include "coordinator/emulation.h"

namespace manifold {

std::string_view EmulationPolicyName(EmulationPolicy policy) {
  switch (policy) {
    case EmulationPolicy::kNever:
      return "never";
    case EmulationPolicy::kFallback:
      return "fallback";
    case EmulationPolicy::kAllow:
      return "allow";
  }
  return "fallback";
}

std::optional<EmulationPolicy> ParseEmulationPolicy(std::string_view text) {
  for (EmulationPolicy policy :
       {EmulationPolicy::kNever, EmulationPolicy::kFallback, EmulationPolicy::kAllow}) {
    if (text == EmulationPolicyName(policy)) return policy;
  }
  return std::nullopt;
}

}  // namespace manifold
