// Fuzzes the OCI/Docker JSON readers (manifest, index, image config) with bytes as a
// registry, an agent or an image layout could hand them over. A parsed index whose
// children all declare distinct platforms must rebuild into an index that parses again
// with the same children, as the coordinator's merge does with what agents report.
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/oci.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // Any answer will do for these two; only a crash or a sanitizer report is a finding.
  static_cast<void>(manifold::ParseManifest(bytes));
  static_cast<void>(manifold::ParseImageConfigPlatform(bytes));
  manifold::Result<manifold::Index> index = manifold::ParseIndex(bytes);
  if (!index.ok()) return 0;

  std::vector<manifold::IndexChild> children;
  std::set<manifold::Platform> seen;
  for (const manifold::Descriptor& child : index->manifests) {
    if (!child.platform || !seen.insert(*child.platform).second) return 0;
    children.push_back({child, *child.platform});
  }
  std::string media_type;
  manifold::Result<std::string> rebuilt = manifold::BuildIndex(children, {}, &media_type);
  if (!rebuilt.ok()) return 0;  // e.g. mixed or unknown child media types
  manifold::Result<manifold::Index> reparsed = manifold::ParseIndex(*rebuilt);
  if (!reparsed.ok() || reparsed->media_type != media_type ||
      reparsed->manifests.size() != children.size()) {
    std::abort();
  }
  for (size_t i = 0; i < children.size(); ++i) {
    const manifold::Descriptor& d = reparsed->manifests[i];
    if (d.digest != children[i].manifest.digest || d.size != children[i].manifest.size ||
        d.platform != children[i].platform) {
      std::abort();
    }
  }
  return 0;
}
