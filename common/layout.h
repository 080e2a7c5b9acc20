// OCI image layout: the directory a builder writes an image into
// (`buildah push IMAGE oci:DIR:TAG`, `buildctl --output type=oci`), read back for pushing.
//
// A layout holds an `oci-layout` marker, an `index.json` listing images (named by the
// org.opencontainers.image.ref.name annotation) and content-addressed blobs under
// blobs/sha256/<hex>. OpenLayoutImage picks one single-platform image and reads its
// manifest; blob paths are only ever built from validated digests, so a hostile index.json
// cannot point outside the layout. Functions here only read the directory, but for the two
// Write functions (for layouts the agent fills itself); they are thread-safe as long as
// nobody rewrites the layout meanwhile.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/oci.h"
#include "common/status.h"

namespace manifold {

// One single-platform image inside a layout, with its manifest read and verified.
struct OciLayoutImage {
  std::string dir;             // the layout directory
  Descriptor descriptor;       // the manifest's entry from index.json (annotations included)
  std::string manifest_bytes;  // exact bytes; their sha256 is descriptor.digest
  Manifest manifest;           // manifest_bytes parsed
};

// Reads the layout at `dir` and selects an image: the one whose ref name annotation equals
// `ref_name`, or, when `ref_name` is empty, the only entry of index.json. Fails when the
// layout is missing or malformed, when the selection finds none or several (the message
// lists the ref names present), when the entry is an index rather than a single-platform
// manifest, when the manifest's bytes do not match its digest, or when a blob it references
// is missing or has the wrong size.
Result<OciLayoutImage> OpenLayoutImage(const std::string& dir, std::string_view ref_name = "");

// The ref names of the layout's images, in index.json's order (unnamed entries skipped).
Result<std::vector<std::string>> LayoutRefNames(const std::string& dir);

// Writes `bytes` as the blob `digest` of the layout at `dir` (its blobs/sha256 must exist).
Status WriteLayoutBlob(const std::string& dir, std::string_view digest, std::string_view bytes);
// Writes the layout's oci-layout marker and its index.json.
Status WriteLayoutIndex(const std::string& dir, std::string_view index_json);

// dir/blobs/sha256/<hex>; fails for anything but a valid sha256 digest.
Result<std::string> LayoutBlobPath(const std::string& dir, std::string_view digest);

// Reads a blob into memory and verifies its sha256 (and its size when expected_size >= 0).
// Blobs larger than max_bytes are refused: this is for manifests and configs, not layers.
Result<std::string> ReadLayoutBlob(const std::string& dir, std::string_view digest,
                                   int64_t expected_size = -1,
                                   int64_t max_bytes = int64_t{64} << 20);

}  // namespace manifold
