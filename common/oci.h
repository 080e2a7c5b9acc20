// OCI and Docker image JSON: descriptors, single-platform manifests, image indexes.
//
// A manifest's or index's digest is the sha256 of its exact bytes, so this file never
// re-serialises something it parsed: parsers read bytes into values, and BuildIndex
// returns the one byte string that is pushed and digested. Both the OCI media types and
// Docker's schema2 ones are understood, because builders emit either; an index never mixes
// them. Parsers accept input from registries, agents and layouts, so every malformed input
// is an error value, never a crash. Plain functions over plain values; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/platform.h"
#include "common/status.h"

namespace manifold {

inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayerTar = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerTarGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayerTarGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";

// The annotation that names an image inside an OCI image layout (the TAG of oci:DIR:TAG).
inline constexpr std::string_view kRefNameAnnotation = "org.opencontainers.image.ref.name";

// A single-platform manifest type (OCI or Docker schema2)?
bool IsManifestMediaType(std::string_view media_type);
// An image index or Docker manifest list?
bool IsIndexMediaType(std::string_view media_type);

// A pointer to content: what it is, its digest and size, and for index children the
// platform it runs on.
struct Descriptor {
  std::string media_type;
  std::string digest;  // "sha256:<hex>", validated by every parser here
  int64_t size = 0;
  std::optional<Platform> platform;
  std::map<std::string, std::string> annotations;

  bool operator==(const Descriptor&) const = default;
};

// The descriptor of a blob of `media_type` holding `bytes`.
Descriptor DescribeBlob(std::string_view media_type, std::string_view bytes);

// A single-platform image manifest.
struct Manifest {
  std::string media_type;  // kOciManifest or kDockerManifest
  Descriptor config;
  std::vector<Descriptor> layers;
  std::map<std::string, std::string> annotations;
};

// Parses an OCI or Docker schema2 image manifest. The media type is the JSON's mediaType,
// or kOciManifest when absent (as OCI allows). Rejects indexes, schema 1, wrong
// schemaVersion, descriptors without a valid sha256 digest or size, and non-JSON.
Result<Manifest> ParseManifest(std::string_view bytes);

// The platform an image config declares (its os, architecture and variant fields),
// normalised through ParsePlatform.
Result<Platform> ParseImageConfigPlatform(std::string_view config_json);

// An image index or Docker manifest list.
struct Index {
  std::string media_type;  // kOciIndex or kDockerManifestList
  std::vector<Descriptor> manifests;
  std::map<std::string, std::string> annotations;
};

// Parses an OCI image index or Docker manifest list; the media type defaults to kOciIndex
// when absent. Children keep their platform when they declare one.
Result<Index> ParseIndex(std::string_view bytes);

// One platform's image, to be listed in an index.
struct IndexChild {
  Descriptor manifest;  // media type, digest and size of the pushed manifest
  Platform platform;    // what goes into the child's "platform" (manifest.platform is ignored)
};

// Builds the bytes of the index that lists `children`, in the given order: an OCI image
// index when they are OCI manifests (with `annotations` at the top level and each child's
// manifest.annotations on its descriptor), a Docker manifest list when they are Docker
// schema2 manifests. Refuses an empty list, mixed or unknown media types, duplicate
// platforms, invalid digests or sizes, and annotations on a Docker list (its format has no
// place for them). Sets *media_type to the index's media type. The result is deterministic
// for equal inputs; push exactly these bytes and take their Sha256Digest.
Result<std::string> BuildIndex(const std::vector<IndexChild>& children,
                               const std::map<std::string, std::string>& annotations,
                               std::string* media_type);

}  // namespace manifold
