#include "coordinator/merger.h"

#include <future>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "common/oci.h"
#include "common/reference.h"

namespace manifold {
namespace {

// Pre-defined annotations of the image spec that the merger sets on an OCI index.
constexpr std::string_view kCreatedAnnotation = "org.opencontainers.image.created";
constexpr std::string_view kSourceAnnotation = "org.opencontainers.image.source";
constexpr std::string_view kRevisionAnnotation = "org.opencontainers.image.revision";

// Checks with one HEAD that the job's image is in `repository` as its agent reported it;
// the child's platform is the one the job was built for.
Result<IndexChild> VerifyChild(const RegistryClient& registry, const std::string& repository,
                               const JobRecord& job) {
  const std::string what = "the " + job.platform.ToString() + " image " + registry.host() + "/" +
                           repository + "@" + job.manifest.digest;
  Result<std::optional<Descriptor>> found = registry.StatManifest(repository, job.manifest.digest);
  if (!found.ok()) return found.status().WithContext(what);
  if (!found->has_value()) {
    return Status::NotFound(what + " is not in the registry (HEAD answered HTTP 404)");
  }
  const Descriptor& there = **found;
  if (there.media_type != job.manifest.media_type ||
      there.size != static_cast<int64_t>(job.manifest.size)) {
    return Status::FailedPrecondition(what + " is in the registry as " + there.media_type + " of " +
                                      std::to_string(there.size) +
                                      " bytes, but its agent reported " + job.manifest.media_type +
                                      " of " + std::to_string(job.manifest.size) + " bytes");
  }
  IndexChild child;
  child.manifest.media_type = job.manifest.media_type;
  child.manifest.digest = job.manifest.digest;
  child.manifest.size = static_cast<int64_t>(job.manifest.size);
  child.platform = job.platform;
  return child;
}

// VerifyChild for every job, the requests all at once (one connection each).
Result<std::vector<IndexChild>> VerifyChildren(const RegistryClient& registry,
                                               const std::string& repository,
                                               const std::vector<JobRecord>& jobs) {
  std::vector<std::future<Result<IndexChild>>> others;
  for (size_t i = 1; i < jobs.size(); ++i) {
    others.push_back(std::async(std::launch::async,
                                [&, i] { return VerifyChild(registry, repository, jobs[i]); }));
  }
  std::vector<Result<IndexChild>> verified;
  if (!jobs.empty()) verified.push_back(VerifyChild(registry, repository, jobs[0]));
  for (auto& other : others) verified.push_back(other.get());
  std::vector<IndexChild> children;
  for (Result<IndexChild>& child : verified) {
    if (!child.ok()) return child.status();
    children.push_back(std::move(*child));
  }
  return children;
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

using Clients = std::map<std::string, std::shared_ptr<const RegistryClient>>;  // by host

// Verifies the children and pushes the index under every tag, with a client per registry.
Result<PushedIndex> PushIndex(const BuildRecord& build, const std::vector<Reference>& tags,
                              const Clients& clients) {
  // Verify the children in the first repository of each registry named by a tag, and
  // build the index once: the bytes are identical for all tags. In the registry's other
  // repositories a HEAD finds each child (agents push to each), or it is copied there from
  // the verified one, blobs mounted, so no tag ever names an index with a missing child.
  std::string index_bytes;
  PushedIndex pushed;
  std::map<std::string, std::string> verified_in;  // registry host -> repository
  std::map<std::string, bool> verified;            // "registry/repository"
  for (const Reference& tag : tags) {
    const RegistryClient& registry = *clients.at(tag.registry);
    auto first = verified_in.find(tag.registry);
    if (!verified[tag.Name()] && first != verified_in.end()) {
      for (const JobRecord& job : build.jobs) {
        Status s = registry.CopyImage(first->second, tag.repository, job.manifest.digest);
        if (!s.ok()) return s.WithContext("the " + job.platform.ToString() + " image");
      }
      verified[tag.Name()] = true;
    }
    if (!verified[tag.Name()]) {
      Result<std::vector<IndexChild>> children =
          VerifyChildren(registry, tag.repository, build.jobs);
      if (!children.ok()) return children.status();
      if (index_bytes.empty()) {
        Result<std::map<std::string, std::string>> annotations = IndexAnnotations(build, *children);
        if (!annotations.ok()) return annotations.status();
        Result<std::string> bytes = BuildIndex(*children, *annotations, &pushed.media_type);
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

}  // namespace

Result<PushedIndex> Merger::MergeAndPushIndex(const BuildRecord& build) {
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
  Clients clients;
  for (const Reference& tag : tags) {
    if (!clients.count(tag.registry)) clients[tag.registry] = Client(tag.registry);
  }
  Result<PushedIndex> pushed = PushIndex(build, tags, clients);
  if (!pushed.ok()) {
    for (const auto& [host, client] : clients) Forget(host);
  }
  return pushed;
}

std::shared_ptr<const RegistryClient> Merger::Client(const std::string& host) {
  std::lock_guard lock(mutex_);
  std::shared_ptr<const RegistryClient>& client = clients_[host];
  if (!client) client = std::make_shared<const RegistryClient>(host, registry_options_);
  return client;
}

void Merger::Forget(const std::string& host) {
  std::lock_guard lock(mutex_);
  clients_.erase(host);
}

}  // namespace manifold
