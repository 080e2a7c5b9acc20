// Fuzzes ParseBuildRequest, the body of POST /v1/builds. A refusal is an InvalidArgument
// that says why; an accepted request is within every bound the parser promises, its
// platforms and tags parse again to themselves (the agents and the merger parse them
// again), and the secrets' bytes are in the secrets map under exactly the spec's ids.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>

#include "common/digest.h"
#include "common/reference.h"
#include "common/validate.h"
#include "coordinator/build_request.h"

namespace {

using manifold::BuildSpec;

void Check(bool invariant) {
  if (!invariant) std::abort();
}

void CheckText(const std::string& text, size_t max_bytes) {
  Check(manifold::ValidateText("field", text, max_bytes).ok());
}

void CheckMap(const std::map<std::string, std::string>& map,
              manifold::Status (*validate_key)(std::string_view, std::string_view)) {
  Check(map.size() <= manifold::kMaxMapEntries);
  for (const auto& [key, value] : map) {
    Check(validate_key("field", key).ok());
    CheckText(value, manifold::kMaxMapValueBytes);
  }
}

void CheckSpec(const BuildSpec& spec, const std::map<std::string, std::string>& secrets) {
  Check(!spec.platforms.empty() && spec.platforms.size() <= manifold::kMaxPlatforms);
  for (auto it = spec.platforms.begin(); it != spec.platforms.end(); ++it) {
    manifold::Result<manifold::Platform> again = manifold::ParsePlatform(it->ToString());
    Check(again.ok() && *again == *it);
    Check(std::find(spec.platforms.begin(), it, *it) == it);  // each platform once
  }
  Check(!spec.tags.empty() && spec.tags.size() <= manifold::kMaxTags);
  for (const std::string& tag : spec.tags) {
    manifold::Result<manifold::Reference> again = manifold::ParseReference(tag);
    Check(again.ok() && again->digest.empty() && again->ToString() == tag);
  }
  Check(manifold::IsValidDigest(spec.context_digest));
  Check(!spec.dockerfile.empty());
  CheckText(spec.dockerfile, manifold::kMaxDockerfileBytes);
  for (const std::string* path : {&spec.dockerfile_path, &spec.source, &spec.revision}) {
    CheckText(*path, manifold::kMaxPathBytes);
  }
  Check(spec.target.empty() || manifold::ValidateStageName("target", spec.target).ok());
  CheckMap(spec.build_args, manifold::ValidateBuildArgName);
  CheckMap(spec.labels, manifold::ValidateLabelKey);
  CheckMap(spec.manifest_annotations, manifold::ValidateLabelKey);
  CheckMap(spec.index_annotations, manifold::ValidateLabelKey);
  Check(spec.job_timeout_s >= 1 && spec.job_timeout_s <= manifold::kMaxJobTimeoutSeconds);
  Check(manifold::ParseEmulationPolicy(manifold::EmulationPolicyName(spec.emulation)) ==
        spec.emulation);
  Check(spec.secret_ids.size() <= manifold::kMaxSecrets &&
        spec.secret_ids.size() == secrets.size());
  for (const std::string& id : spec.secret_ids) {
    Check(manifold::ValidateSecretId("secrets", id).ok());
    auto bytes = secrets.find(id);
    Check(bytes != secrets.end() && bytes->second.size() <= manifold::kMaxSecretBytes);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string body(reinterpret_cast<const char*>(data), size);
  std::map<std::string, std::string> secrets;
  manifold::Result<BuildSpec> spec = manifold::ParseBuildRequest(body, &secrets);
  if (!spec.ok()) {
    Check(spec.status().code() == manifold::Status::Code::kInvalidArgument);
    Check(!spec.status().message().empty());  // every refusal says why
    return 0;
  }
  CheckSpec(*spec, secrets);
  return 0;
}
