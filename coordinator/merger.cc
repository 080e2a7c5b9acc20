#include "coordinator/merger.h"

#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
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

// Makes the build's children present in `repository`. With no `source`, agents pushed them
// there: one HEAD each checks them and they are returned in *children (may be null).
// Otherwise each is copied from `source`, a repository of the same registry where they
// were checked, blobs mounted, unless a HEAD finds it already.
Status PlaceChildren(const RegistryClient& registry, const std::string& repository,
                     const std::string& source, const std::vector<JobRecord>& jobs,
                     std::vector<IndexChild>* children) {
  if (source.empty()) {
    Result<std::vector<IndexChild>> verified = VerifyChildren(registry, repository, jobs);
    if (!verified.ok()) return verified.status();
    if (children != nullptr) *children = std::move(*verified);
    return Status::Ok();
  }
  for (const JobRecord& job : jobs) {
    Status s = registry.CopyImage(source, repository, job.manifest.digest);
    if (!s.ok()) return s.WithContext("the " + job.platform.ToString() + " image");
  }
  return Status::Ok();
}

// What a failed merge left behind: which tags name the new index and which do not, for
// the build's error.
std::string DescribeMovedTags(const std::vector<Reference>& tags, size_t moved) {
  if (moved == 0) return "no tag was moved";
  std::string text = "the index was pushed to ";
  for (size_t i = 0; i < tags.size(); ++i) {
    if (i == moved) text += "; not to ";
    text += (i == 0 || i == moved ? "" : ", ") + tags[i].ToString();
  }
  return text;
}

// Pushes the index under every tag, with a client per registry. No tag moves until every
// repository the tags name has taken an upload session (registries have no "may I push?"
// query, and a refusal after the first tag moved would leave the build half published)
// and holds every child, so no tag ever names an index with a missing child.
Result<PushedIndex> PushIndex(const BuildRecord& build, const std::vector<Reference>& tags,
                              const Clients& clients, const std::function<bool()>& leading) {
  std::vector<const Reference*> repositories;  // the first tag naming each repository
  std::set<std::string> seen;
  for (const Reference& tag : tags) {
    if (seen.insert(tag.Name()).second) repositories.push_back(&tag);
  }
  for (const Reference* repository : repositories) {
    Status s = clients.at(repository->registry)->CheckPushAccess(repository->repository);
    if (!s.ok()) return s.WithContext(DescribeMovedTags(tags, 0));
  }
  // The children are checked in the first repository of each registry (agents push
  // there) and copied into its others; the index is built once, with identical bytes for
  // every tag.
  std::map<std::string, std::string> checked_in;  // registry host -> repository
  std::string index_bytes;
  PushedIndex pushed;
  for (const Reference* repository : repositories) {
    auto [first, is_first] = checked_in.emplace(repository->registry, repository->repository);
    std::vector<IndexChild> children;
    Status s = PlaceChildren(*clients.at(repository->registry), repository->repository,
                             is_first ? "" : first->second, build.jobs, &children);
    if (!s.ok()) return s.WithContext(DescribeMovedTags(tags, 0));
    if (!index_bytes.empty()) continue;
    Result<std::map<std::string, std::string>> annotations = IndexAnnotations(build, children);
    if (!annotations.ok()) return annotations.status().WithContext(DescribeMovedTags(tags, 0));
    Result<std::string> bytes = BuildIndex(children, *annotations, &pushed.media_type);
    if (!bytes.ok()) return bytes.status().WithContext(DescribeMovedTags(tags, 0));
    index_bytes = *bytes;
  }
  for (size_t i = 0; i < tags.size(); ++i) {
    const Reference& tag = tags[i];
    const RegistryClient& registry = *clients.at(tag.registry);
    const std::string& source = checked_in.at(tag.registry);
    if (leading && !leading()) {
      return Status::Unavailable(
                 "this coordinator's leader lease is not renewed, so it moves no tag until it "
                 "is (or another coordinator leads and merges the build)")
          .WithContext(DescribeMovedTags(tags, i));
    }
    // A child raced by another push is put back before the index is put again.
    Result<std::string> digest =
        registry.PutManifestRepairing(tag.repository, tag.tag, pushed.media_type, index_bytes, [&] {
          return PlaceChildren(registry, tag.repository, source == tag.repository ? "" : source,
                               build.jobs, nullptr);
        });
    if (!digest.ok()) {
      return digest.status()
          .WithContext("pushing the index to " + tag.ToString())
          .WithContext(DescribeMovedTags(tags, i));
    }
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
  Result<PushedIndex> pushed = PushIndex(build, tags, clients, leading_);
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
