#include "cli/imagetools.h"

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

int RunImagetoolsInspect(const std::string& text, bool raw, std::ostream* out, std::ostream* err) {
  auto fail = [err](const Status& status) {
    *err << "manifold: " << status.message() << "\n";
    err->flush();
    return 1;
  };
  Result<Reference> reference = ParseReference(text);
  if (!reference.ok()) return fail(reference.status());
  RegistryClient registry(reference->registry);
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

}  // namespace manifold
