// CacheMountsArtifact: the contents of RUN --mount=type=cache directories of one
// (repository, platform) as an OCI artifact, so that they travel between agents of that
// platform through the registry.
//
// Following the OCI image-spec 1.1 guidance on artifacts, it is an image manifest with an
// artifactType of its own, a config of its own media type (so that registries without
// artifactType support, docker-registry 2.8 among them, still store and serve it, and no
// tool takes it for a runnable image) and one uncompressed tar layer holding the cache
// directories, tagged "cache-mounts" in the job's registry cache repository. The manifest
// carries when it was made (org.opencontainers.image.created), so that an entry older
// than the cache TTL is not pulled. A pulled archive is hostile: its size is bounded
// before it is fetched, and it is unpacked by TarExtractor's rules (no path outside the
// directory, no devices or fifos, its file data bounded), leaving nothing when it is wrong.
// Plain functions; thread-safe as far as the RegistryClient given is.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/oci.h"
#include "common/platform.h"
#include "common/registry.h"
#include "common/status.h"

namespace manifold {

inline constexpr std::string_view kCacheMountsArtifactType =
    "application/vnd.manifold.cache-mounts.v1";
inline constexpr std::string_view kCacheMountsConfig =
    "application/vnd.manifold.cache-mounts.config.v1+json";
inline constexpr std::string_view kCacheMountsLayer =
    "application/vnd.manifold.cache-mounts.v1+tar";
inline constexpr std::string_view kCacheMountsTag = "cache-mounts";
// Where buildah keeps cache mounts without from=: TMPDIR/buildah-cache (buildah-cache-UID
// when rootless), a directory per mount id below it.
inline constexpr std::string_view kBuildahCacheDir = "buildah-cache";
// The largest artifact: it is packed and unpacked in memory, and RegistryClient::GetBlob
// takes no more.
inline constexpr uint64_t kMaxCacheMountsArtifactBytes = uint64_t{256} << 20;

// What an artifact's manifest says.
struct CacheMountsManifest {
  Descriptor layer;
  int64_t created = 0;  // seconds since the epoch
};

// The manifest's exact bytes for a config and a layer made at `created`.
std::string MakeCacheMountsManifest(const Descriptor& config, const Descriptor& layer,
                                    int64_t created);
// An error unless `bytes` is an image manifest of this artifact type with one layer and a
// creation time.
Result<CacheMountsManifest> ParseCacheMountsManifest(std::string_view bytes);
// Whether an artifact made at `created` may be used at `now` (seconds since the epoch)
// under a TTL of `ttl_seconds` (0: no limit).
bool WithinTtl(int64_t created, int64_t now, uint32_t ttl_seconds);

// Whether buildah's cache directories in `dir`, a build's TMPDIR, hold any file: if not,
// no build used a cache mount, and there is nothing worth an artifact.
bool HoldsCacheMounts(const std::string& dir);
// The archive of buildah's cache directories in `dir`; FailedPrecondition naming
// --cache-mounts-max-bytes when it would be larger than `max_bytes` (nothing more is read
// then).
Result<std::string> PackCacheMounts(const std::string& dir, uint64_t max_bytes);
// Unpacks a pulled archive into `dir` (which must not exist), at most `max_bytes` of file
// data; an error leaves no `dir`.
Status UnpackCacheMounts(std::string_view archive, const std::string& dir, uint64_t max_bytes);

// Packs `dir` and pushes it to `repository` as the artifact for `platform`, made at `now`;
// the archive's size in *bytes.
Status PushCacheMounts(const RegistryClient& registry, const std::string& repository,
                       const std::string& dir, const Platform& platform, int64_t now,
                       uint64_t max_bytes, uint64_t* bytes);
// Pulls the artifact of `repository` into `dir` (which must not exist): the archive's
// size, NotFound when the repository has none, FailedPrecondition when it is older than
// the TTL or larger than `max_bytes` (then nothing is fetched but its manifest).
Result<uint64_t> PullCacheMounts(const RegistryClient& registry, const std::string& repository,
                                 const std::string& dir, int64_t now, uint32_t ttl_seconds,
                                 uint64_t max_bytes);

}  // namespace manifold
