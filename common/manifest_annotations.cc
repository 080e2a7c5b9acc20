#include "common/manifest_annotations.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/digest.h"
#include "common/oci.h"

namespace manifold {

Result<std::string> AnnotateManifest(std::string_view bytes,
                                     const std::map<std::string, std::string>& annotations) {
  Result<Manifest> manifest = ParseManifest(bytes);
  if (!manifest.ok()) return manifest.status();
  // ParseManifest accepted it, so it is a JSON object whose annotations, if any, are an
  // object of strings.
  nlohmann::json j = nlohmann::json::parse(bytes.begin(), bytes.end());
  std::string missing;
  for (const auto& [key, value] : annotations) {
    auto it = manifest->annotations.find(key);
    if (it != manifest->annotations.end() && it->second == value) continue;
    j["annotations"][key] = value;
    missing += (missing.empty() ? "" : ", ") + key;
  }
  if (missing.empty()) return std::string(bytes);
  if (manifest->media_type == kDockerManifest) {
    return Status::InvalidArgument(
        "the image has a Docker schema2 manifest, which cannot carry the manifest annotations "
        "the build asked for (" +
        missing + "): build an OCI image or leave out --annotation manifest:...");
  }
  return j.dump();
}

Status AnnotateLayoutImage(const std::map<std::string, std::string>& annotations,
                           OciLayoutImage* image) {
  const std::string context = "manifest " + image->descriptor.digest + " in " + image->dir;
  Result<std::string> bytes = AnnotateManifest(image->manifest_bytes, annotations);
  if (!bytes.ok()) return bytes.status().WithContext(context);
  if (*bytes == image->manifest_bytes) return Status::Ok();
  Result<Manifest> manifest = ParseManifest(*bytes);
  if (!manifest.ok()) return manifest.status().WithContext(context);
  const std::string digest = Sha256Digest(*bytes);
  Result<std::string> path = LayoutBlobPath(image->dir, digest);
  if (!path.ok()) return path.status();
  std::ofstream out(*path, std::ios::binary | std::ios::trunc);
  out.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
  out.close();
  if (!out) return Status::Internal("cannot write the annotated manifest to " + *path);
  image->descriptor.digest = digest;
  image->descriptor.size = static_cast<int64_t>(bytes->size());
  image->manifest_bytes = std::move(bytes).value();
  image->manifest = std::move(manifest).value();
  return Status::Ok();
}

}  // namespace manifold
