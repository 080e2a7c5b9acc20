// Test images: small but genuine single-platform images built in memory, and OCI image
// layouts written by hand, for tests of the layout reader, the registry client and the
// agent's push path without running a builder.
//
// An image has one uncompressed tar layer holding one file, a config naming its platform
// (with the layer's diff_id) and a manifest, all with correct digests and sizes, so
// registries and skopeo accept it like a built one. Plain functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/oci.h"
#include "common/platform.h"
#include "common/status.h"

namespace manifold::test {

struct TestImage {
  Platform platform;
  std::string config_bytes;
  Descriptor config;
  std::vector<std::string> layer_bytes;
  std::vector<Descriptor> layers;
  std::string manifest_bytes;
  Descriptor manifest;  // media type, digest, size; platform set to `platform`
};

// Builds an image for `platform` whose layer holds the file "hello.txt" with `content`
// (different content gives different blobs). Uses OCI media types, or Docker schema2
// ones when docker_media_types is set.
TestImage MakeTestImage(const Platform& platform, std::string_view content,
                        bool docker_media_types = false);

// A ustar archive with one regular file, deterministic for equal inputs.
std::string TarWithOneFile(std::string_view name, std::string_view content);

// Writes bytes to dir/blobs/sha256/<hex> (directories created) and returns the digest.
Result<std::string> WriteLayoutBlob(const std::string& dir, std::string_view bytes);

struct LayoutEntry {
  const TestImage* image;
  std::string ref_name;  // "" writes the entry without a ref name annotation
};

// Writes an OCI image layout at `dir` holding these images: oci-layout, every blob, and
// index.json listing each manifest (in order) with its ref name.
Status WriteTestLayout(const std::string& dir, const std::vector<LayoutEntry>& entries);

}  // namespace manifold::test
