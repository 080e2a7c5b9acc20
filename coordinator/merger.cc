#include "coordinator/merger.h"

#include <map>
#include <memory>
#include <vector>

#include "common/oci.h"
#include "common/reference.h"
#include "common/registry.h"

namespace manifold {
namespace {

// Pre-defined annotations of the image spec that the merger sets on an OCI index.
constexpr std::string_view kCreatedAnnotation = "org.opencontainers.image.created";
constexpr std::string_view kSourceAnnotation = "org.opencontainers.image.source";
constexpr std::string_view kRevisionAnnotation = "org.opencontainers.image.revision";

// Fetches one child manifest and its config from `repository`, and checks that the image
// really is for the platform the job was built for.
Result<IndexChild> VerifyChild(const RegistryClient& registry, const std::string& repository,
                               const JobRecord& job) {
  std::string where = registry.host() + "/" + repository + "@" + job.manifest.digest;
  Result<FetchedManifest> fetched = registry.GetManifest(repository, job.manifest.digest);
  if (!fetched.ok()) {
    // Not only "missing": a refused connection or TLS setting fails here too.
    return fetched.status().WithContext("cannot read the " + job.platform.ToString() + " image " +
                                        where + " from the registry");
  }
  Result<Manifest> manifest = ParseManifest(fetched->bytes);
  if (!manifest.ok()) return manifest.status().WithContext(where);
  Result<std::string> config = registry.GetBlob(repository, manifest->config.digest);
  if (!config.ok()) return config.status().WithContext("config of " + where);
  Result<Platform> platform = ParseImageConfigPlatform(*config);
  if (!platform.ok()) return platform.status().WithContext("config of " + where);
  if (!(*platform == job.platform)) {
    return Status::Internal("the image built for " + job.platform.ToString() + " (" + where +
                            ") is for " + platform->ToString() + " according to its config");
  }
  IndexChild child;
  child.manifest.media_type = fetched->media_type;
  child.manifest.digest = fetched->digest;
  child.manifest.size = static_cast<int64_t>(fetched->bytes.size());
  child.platform = *platform;
  return child;
}

// The index annotations the build asked for: its source and revision, then the custom
// ones, which win (as a buildx --annotation overrides the automatic values).
std::map<std::string, std::string> RequestedIndexAnnotations(const BuildSpec& spec) {
  std::map<std::string, std::string> annotations;
  if (!spec.source.empty()) annotations[std::string(kSourceAnnotation)] = spec.source;
  if (!spec.revision.empty()) annotations[std::string(kRevisionAnnotation)] = spec.revision;
  for (const auto& [key, value] : spec.index_annotations) annotations[key] = value;
  return annotations;
}

// The annotations of the index over `children`. A Docker manifest list has no place for
// annotations: the coordinator's own created time is then left out, but annotations the
// build asked for fail the merge rather than vanish.
Result<std::map<std::string, std::string>> IndexAnnotations(
    const BuildRecord& build, const std::vector<IndexChild>& children) {
  std::map<std::string, std::string> requested = RequestedIndexAnnotations(build.spec);
  bool docker_list = !children.empty() && children[0].manifest.media_type == kDockerManifest;
  if (docker_list) {
    if (requested.empty()) return requested;
    std::string keys;
    for (const auto& [key, value] : requested) keys += (keys.empty() ? "" : ", ") + key;
    return Status::FailedPrecondition(
        "the images were built as Docker schema2 manifests, so their index is a Docker "
        "manifest list, which cannot carry annotations; the build asked for index "
        "annotations (" +
        keys + "): build OCI images or leave out the index annotations");
  }
  std::map<std::string, std::string> annotations = {
      {std::string(kCreatedAnnotation), build.merge_started_at}};
  if (build.merge_started_at.empty()) annotations.clear();
  for (const auto& [key, value] : requested) annotations[key] = value;
  return annotations;
}

}  // namespace

Result<PushedIndex> MergeAndPushIndex(const BuildRecord& build,
                                      const RegistryOptions& registry_options) {
  std::vector<Reference> tags;
  for (const std::string& tag : build.spec.tags) {
    Result<Reference> ref = ParseReference(tag);
    if (!ref.ok()) return ref.status().WithContext("build " + std::to_string(build.id));
    tags.push_back(*ref);
  }
  if (tags.empty()) return Status::InvalidArgument("build has no tags to push");
  for (const JobRecord& job : build.jobs) {
    if (job.state != "succeeded") {
      return Status::FailedPrecondition(job.platform.ToString() + " has not succeeded");
    }
  }

  // Verify the children in the first repository of each registry named by a tag, and
  // build the index once: the bytes are identical for all tags. In the registry's other
  // repositories a HEAD finds each child (agents push to each), or it is copied there from
  // the verified one, blobs mounted, so no tag ever names an index with a missing child.
  std::string index_bytes;
  PushedIndex pushed;
  std::map<std::string, std::unique_ptr<RegistryClient>> clients;  // by registry host
  std::map<std::string, std::string> verified_in;                  // registry host -> repository
  std::map<std::string, bool> verified;                            // "registry/repository"
  for (const Reference& tag : tags) {
    std::unique_ptr<RegistryClient>& client = clients[tag.registry];
    if (!client) client = std::make_unique<RegistryClient>(tag.registry, registry_options);
    const RegistryClient& registry = *client;
    auto first = verified_in.find(tag.registry);
    if (!verified[tag.Name()] && first != verified_in.end()) {
      for (const JobRecord& job : build.jobs) {
        Status s = registry.CopyImage(first->second, tag.repository, job.manifest.digest);
        if (!s.ok()) return s.WithContext("the " + job.platform.ToString() + " image");
      }
      verified[tag.Name()] = true;
    }
    if (!verified[tag.Name()]) {
      std::vector<IndexChild> children;
      for (const JobRecord& job : build.jobs) {
        Result<IndexChild> child = VerifyChild(registry, tag.repository, job);
        if (!child.ok()) return child.status();
        children.push_back(*child);
      }
      if (index_bytes.empty()) {
        Result<std::map<std::string, std::string>> annotations = IndexAnnotations(build, children);
        if (!annotations.ok()) return annotations.status();
        Result<std::string> bytes = BuildIndex(children, *annotations, &pushed.media_type);
        if (!bytes.ok()) return bytes.status();
        index_bytes = *bytes;
      }
      verified[tag.Name()] = true;
      verified_in[tag.registry] = tag.repository;
    }
    Result<std::string> digest =
        registry.PutManifest(tag.repository, tag.tag, pushed.media_type, index_bytes);
    if (!digest.ok()) return digest.status().WithContext("pushing the index to " + tag.ToString());
    pushed.digest = *digest;
  }
  return pushed;
}

}  // namespace manifold
