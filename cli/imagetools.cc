#include "cli/imagetools.h"

#include <algorithm>
#include <functional>
#include <future>
#include <set>
#include <sstream>
#include <utility>

#include "cli/format.h"
#include "common/oci.h"

namespace manifold {

Result<std::string> FormatInspect(const Reference& reference, const FetchedManifest& manifest) {
  std::ostringstream text;
  text << "Name:      " << reference.ToString() << "\n";
  text << "MediaType: " << manifest.media_type << "\n";
  text << "Digest:    " << manifest.digest << "\n";
  if (!IsIndexMediaType(manifest.media_type)) return text.str();

  Result<Index> index = ParseIndex(manifest.bytes);
  if (!index.ok()) {
    return index.status().WithContext("the index " + reference.ToString() + " is malformed");
  }
  // buildx names each child by the reference as typed plus the child's digest.
  std::string base = reference.Name();
  if (!reference.tag.empty()) base += ":" + reference.tag;
  if (!index->manifests.empty()) text << "\nManifests:\n";
  bool first = true;
  for (const Descriptor& child : index->manifests) {
    if (!first) text << "\n";
    first = false;
    text << "  Name:      " << base << "@" << child.digest << "\n";
    text << "  MediaType: " << child.media_type << "\n";
    if (child.platform.has_value()) text << "  Platform:  " << child.platform->ToString() << "\n";
  }
  return text.str();
}

int RunImagetoolsInspect(const std::string& text, bool raw, std::ostream* out, std::ostream* err,
                         const RegistryOptions& options) {
  auto fail = [err](const Status& status) { return PrintFailure(err, status); };
  Result<Reference> reference = ParseReference(text);
  if (!reference.ok()) return fail(reference.status());
  RegistryClient registry(reference->registry, options);
  const std::string& wanted = reference->digest.empty() ? reference->tag : reference->digest;
  Result<FetchedManifest> manifest = registry.GetManifest(reference->repository, wanted);
  if (!manifest.ok()) return fail(manifest.status());
  if (raw) {
    *out << manifest->bytes;  // exact bytes, so `| sha256sum` matches the digest
    out->flush();
    return 0;
  }
  Result<std::string> formatted = FormatInspect(*reference, *manifest);
  if (!formatted.ok()) return fail(formatted.status());
  *out << *formatted;
  out->flush();
  return 0;
}

Result<std::map<std::string, std::string>> ParseIndexAnnotations(
    const std::vector<std::string>& annotations) {
  std::map<std::string, std::string> out;
  for (const std::string& text : annotations) {
    std::string rest = text;
    const size_t eq = rest.find('=');
    const size_t colon = rest.find(':');
    if (colon != std::string::npos && (eq == std::string::npos || colon < eq)) {
      const std::string target = rest.substr(0, colon);
      if (target != "index") {
        return Status::InvalidArgument("annotation \"" + text +
                                       "\": imagetools create writes only the index, so use " +
                                       "index:KEY=VALUE (or KEY=VALUE), not " + target + ":");
      }
      rest = rest.substr(colon + 1);
    }
    const size_t sep = rest.find('=');
    if (sep == std::string::npos || sep == 0) {
      return Status::InvalidArgument("annotation \"" + text + "\" is not index:KEY=VALUE");
    }
    out[rest.substr(0, sep)] = rest.substr(sep + 1);
  }
  return out;
}

namespace {

// One child of the index to be, and the repository it was found in.
struct SourceChild {
  IndexChild child;
  Reference source;
};

// Runs work(i) for every i in [0, n) at once, each on a thread of its own, and returns
// the results in order: the requests of independent sources then overlap instead of
// queueing behind each other.
template <typename T>
std::vector<T> InParallel(size_t n, const std::function<T(size_t)>& work) {
  std::vector<std::future<T>> running;
  for (size_t i = 0; i < n; ++i) running.push_back(std::async(std::launch::async, work, i));
  std::vector<T> results;
  for (auto& r : running) results.push_back(r.get());
  return results;
}

// Reads one source: an image gives one child, whose platform comes from its config; an
// index gives its children as they are (they exist in its repository: the registry
// checked them when the index was pushed).
Result<std::vector<SourceChild>> ReadSource(const RegistryClient& registry,
                                            const std::string& text) {
  Result<Reference> ref = ParseReference(text);
  if (!ref.ok()) return ref.status().WithContext("source " + text);
  if (ref->registry != registry.host()) {
    return Status::InvalidArgument(
        "source " + text + " is on registry " + ref->registry + " but the target is on " +
        registry.host() + "; copying between registries is not supported, so push the image to " +
        registry.host() + " first");
  }
  const std::string wanted = ref->digest.empty() ? ref->tag : ref->digest;
  Result<FetchedManifest> fetched = registry.GetManifest(ref->repository, wanted);
  if (!fetched.ok()) return fetched.status().WithContext("source " + text);
  std::vector<SourceChild> children;
  if (IsIndexMediaType(fetched->media_type)) {
    Result<Index> index = ParseIndex(fetched->bytes);
    if (!index.ok()) return index.status().WithContext("source " + text);
    for (const Descriptor& d : index->manifests) {
      if (!d.platform.has_value()) {
        return Status::InvalidArgument("source " + text + ": its child " + d.digest +
                                       " declares no platform");
      }
      Descriptor manifest{d.media_type, d.digest, d.size, std::nullopt, d.annotations};
      children.push_back({{manifest, *d.platform}, *ref});
    }
    return children;
  }
  if (!IsManifestMediaType(fetched->media_type)) {
    return Status::InvalidArgument("source " + text + " has media type " + fetched->media_type +
                                   ", neither an image manifest nor an index");
  }
  Result<Manifest> manifest = ParseManifest(fetched->bytes);
  if (!manifest.ok()) return manifest.status().WithContext("source " + text);
  Result<std::string> config = registry.GetBlob(ref->repository, manifest->config.digest);
  if (!config.ok()) return config.status().WithContext("source " + text);
  Result<Platform> platform = ParseImageConfigPlatform(*config);
  if (!platform.ok()) return platform.status().WithContext("source " + text);
  Descriptor descriptor{fetched->media_type,
                        fetched->digest,
                        static_cast<int64_t>(fetched->bytes.size()),
                        std::nullopt,
                        {}};
  children.push_back({{descriptor, *platform}, *ref});
  return children;
}

}  // namespace

int RunImagetoolsCreate(const ImagetoolsCreateOptions& options, std::ostream* out,
                        std::ostream* err) {
  auto fail = [err](const Status& status) {
    *err << "manifold: imagetools create: " << status.message() << "\n";
    err->flush();
    return 1;
  };
  if (options.tags.empty()) return fail(Status::InvalidArgument("no -t REF to push the index to"));
  if (options.sources.empty()) return fail(Status::InvalidArgument("no source images to merge"));
  Result<std::map<std::string, std::string>> annotations =
      ParseIndexAnnotations(options.annotations);
  if (!annotations.ok()) return fail(annotations.status());

  std::vector<Reference> targets;
  for (const std::string& text : options.tags) {
    Result<Reference> ref = ParseReference(text);
    if (!ref.ok()) return fail(ref.status().WithContext("-t " + text));
    if (!ref->digest.empty()) {
      return fail(
          Status::InvalidArgument("-t " + text + ": the target must be a tag, not a digest"));
    }
    targets.push_back(*ref);
  }
  for (const Reference& target : targets) {
    if (target.registry != targets.front().registry) {
      return fail(Status::InvalidArgument(
          "-t " + target.ToString() + " is on another registry than " + targets.front().ToString() +
          "; push to one registry per command"));
    }
  }
  // One client for the whole command: its token cache and open connections serve every
  // request that follows.
  RegistryClient registry(targets.front().registry, options.registry_options);

  // With --append, what the first tag holds now is read with the sources, as the last one.
  std::vector<std::string> to_read = options.sources;
  if (options.append) to_read.push_back(targets.front().ToString());
  std::vector<Result<std::vector<SourceChild>>> read = InParallel<Result<std::vector<SourceChild>>>(
      to_read.size(), [&](size_t i) { return ReadSource(registry, to_read[i]); });
  std::vector<SourceChild> children;
  for (size_t i = 0; i < options.sources.size(); ++i) {
    if (!read[i].ok()) return fail(read[i].status());
    children.insert(children.end(), read[i]->begin(), read[i]->end());
  }
  if (options.append) {
    const Result<std::vector<SourceChild>>& current = read.back();
    if (!current.ok()) {
      return fail(current.status().WithContext(
          "--append reads what -t " + targets.front().ToString() +
          " holds now (push an image or index there first, or drop --append)"));
    }
    // Kept in their order, before the sources, unless a source brings their platform.
    std::vector<SourceChild> kept;
    for (const SourceChild& c : *current) {
      auto replaced = std::find_if(children.begin(), children.end(), [&](const SourceChild& n) {
        return n.child.platform == c.child.platform;
      });
      if (replaced == children.end()) kept.push_back(c);
    }
    children.insert(children.begin(), kept.begin(), kept.end());
  }

  std::vector<IndexChild> index_children;
  for (const SourceChild& c : children) index_children.push_back(c.child);
  std::string media_type;
  Result<std::string> index = BuildIndex(index_children, *annotations, &media_type);
  if (!index.ok()) return fail(index.status());
  if (options.dry_run) {
    *out << *index << "\n";
    out->flush();
    return 0;
  }

  // Every child must exist in each target repository before any tag points at the index:
  // a HEAD finds it there, or it is copied from its source repository (blobs mounted).
  std::vector<std::pair<const Reference*, const SourceChild*>> copies;
  std::set<std::string> planned;  // "repository@digest": two tags may share a repository
  for (const Reference& target : targets) {
    for (const SourceChild& c : children) {
      if (c.source.repository != target.repository &&
          planned.insert(target.repository + "@" + c.child.manifest.digest).second) {
        copies.push_back({&target, &c});
      }
    }
  }
  std::vector<Status> copied = InParallel<Status>(copies.size(), [&](size_t i) {
    const auto& [target, c] = copies[i];
    return registry.CopyImage(c->source.repository, target->repository, c->child.manifest.digest);
  });
  for (const Status& s : copied) {
    if (!s.ok()) return fail(s);
  }
  std::string digest;
  for (const Reference& target : targets) {
    Result<std::string> pushed =
        registry.PutManifest(target.repository, target.tag, media_type, *index);
    if (!pushed.ok()) return fail(pushed.status());
    digest = *pushed;
  }
  *out << digest << "\n";
  out->flush();
  return 0;
}

}  // namespace manifold
