#include "cli/imagetools.h"

#include <memory>
#include <set>
#include <sstream>

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
  auto fail = [err](const Status& status) {
    *err << "manifold: " << status.message() << "\n";
    err->flush();
    return 1;
  };
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

// One child of the index to be, and where its manifest was read.
struct SourceChild {
  IndexChild child;
  Reference source;   // registry and repository it was found in
  std::string bytes;  // the manifest's exact bytes
};

// Copies (by mount when the registry allows, else by download and upload) the blobs a
// manifest refers to from `from` into `to`, then the manifest itself by digest.
Status CopyChild(const RegistryClient& registry, const SourceChild& source, const std::string& to) {
  const std::string& from = source.source.repository;
  Result<Manifest> manifest = ParseManifest(source.bytes);
  if (!manifest.ok()) return manifest.status();
  std::vector<Descriptor> blobs = {manifest->config};
  blobs.insert(blobs.end(), manifest->layers.begin(), manifest->layers.end());
  std::set<std::string> seen;
  for (const Descriptor& blob : blobs) {
    if (!seen.insert(blob.digest).second) continue;
    Result<bool> exists = registry.BlobExists(to, blob.digest);
    if (!exists.ok()) return exists.status();
    if (*exists) continue;
    Result<bool> mounted = registry.MountBlob(to, blob.digest, from);
    if (!mounted.ok()) return mounted.status();
    if (*mounted) continue;
    Result<std::string> bytes = registry.GetBlob(from, blob.digest);
    if (!bytes.ok()) return bytes.status();
    Status s = registry.PushBlob(to, blob.digest, *bytes);
    if (!s.ok()) return s;
  }
  Result<std::string> put = registry.PutManifest(to, source.child.manifest.digest,
                                                 source.child.manifest.media_type, source.bytes);
  return put.ok() ? Status::Ok() : put.status();
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
  const std::string registry_host = targets.front().registry;
  RegistryClient registry(registry_host, options.registry_options);

  // Read every source: images give one child, indexes all of theirs.
  std::vector<SourceChild> children;
  for (const std::string& text : options.sources) {
    Result<Reference> ref = ParseReference(text);
    if (!ref.ok()) return fail(ref.status().WithContext("source " + text));
    if (ref->registry != registry_host) {
      return fail(Status::InvalidArgument(
          "source " + text + " is on registry " + ref->registry + " but the target is on " +
          registry_host + "; copying between registries is not supported, so push the image to " +
          registry_host + " first"));
    }
    const std::string wanted = ref->digest.empty() ? ref->tag : ref->digest;
    Result<FetchedManifest> fetched = registry.GetManifest(ref->repository, wanted);
    if (!fetched.ok()) return fail(fetched.status().WithContext("source " + text));
    if (IsIndexMediaType(fetched->media_type)) {
      Result<Index> index = ParseIndex(fetched->bytes);
      if (!index.ok()) return fail(index.status().WithContext("source " + text));
      for (const Descriptor& d : index->manifests) {
        if (!d.platform.has_value()) {
          return fail(Status::InvalidArgument("source " + text + ": its child " + d.digest +
                                              " declares no platform"));
        }
        Result<FetchedManifest> child = registry.GetManifest(ref->repository, d.digest);
        if (!child.ok()) return fail(child.status().WithContext("source " + text));
        Descriptor manifest{d.media_type, d.digest, d.size, std::nullopt, d.annotations};
        children.push_back({{manifest, *d.platform}, *ref, child->bytes});
      }
      continue;
    }
    if (!IsManifestMediaType(fetched->media_type)) {
      return fail(Status::InvalidArgument("source " + text + " has media type " +
                                          fetched->media_type +
                                          ", neither an image manifest nor an index"));
    }
    Result<Manifest> manifest = ParseManifest(fetched->bytes);
    if (!manifest.ok()) return fail(manifest.status().WithContext("source " + text));
    Result<std::string> config = registry.GetBlob(ref->repository, manifest->config.digest);
    if (!config.ok()) return fail(config.status().WithContext("source " + text));
    Result<Platform> platform = ParseImageConfigPlatform(*config);
    if (!platform.ok()) return fail(platform.status().WithContext("source " + text));
    Descriptor descriptor{fetched->media_type,
                          fetched->digest,
                          static_cast<int64_t>(fetched->bytes.size()),
                          std::nullopt,
                          {}};
    children.push_back({{descriptor, *platform}, *ref, fetched->bytes});
  }

  std::vector<IndexChild> index_children;
  for (const SourceChild& c : children) index_children.push_back(c.child);
  std::string media_type;
  Result<std::string> index = BuildIndex(index_children, *annotations, &media_type);
  if (!index.ok()) return fail(index.status());

  // Every child must exist in each target repository before any tag points at the index.
  for (const Reference& target : targets) {
    if (target.registry != registry_host) {
      return fail(Status::InvalidArgument("-t " + target.ToString() +
                                          " is on another registry "
                                          "than " +
                                          targets.front().ToString() +
                                          "; push to one registry per command"));
    }
    for (const SourceChild& c : children) {
      if (c.source.repository == target.repository) continue;
      Status s = CopyChild(registry, c, target.repository);
      if (!s.ok()) {
        return fail(s.WithContext("copy " + c.child.manifest.digest + " into " + target.Name()));
      }
    }
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
