// Image transfer: whole images into a repository, built from the client's /v2/ verbs (a
// HEAD first, then a mount, then an upload for each blob, and the manifest last), so
// that an image pushed twice, or to several repositories of one registry, sends its
// bytes once.
#include <set>
#include <vector>

#include "common/registry.h"

namespace manifold {
namespace {

// Makes `blob` present in `repository`: nothing when a HEAD finds it, a mount from
// `mount_from` (when set) when the registry agrees, else `upload()`. Counts in *stats.
// Returns true when bytes were uploaded.
Result<bool> EnsureBlob(const RegistryClient& client, std::string_view repository,
                        const Descriptor& blob, std::string_view mount_from,
                        const std::function<Status()>& upload, PushStats* stats) {
  Result<bool> exists = client.BlobExists(repository, blob.digest);
  if (!exists.ok()) return exists.status();
  if (*exists) {
    ++stats->blobs_skipped;
    stats->bytes_skipped += blob.size;
    return false;
  }
  if (!mount_from.empty() && mount_from != repository) {
    Result<bool> mounted = client.MountBlob(repository, blob.digest, mount_from);
    if (!mounted.ok()) return mounted.status();
    if (*mounted) {
      ++stats->blobs_mounted;
      stats->bytes_mounted += blob.size;
      return false;
    }
  }
  Status s = upload();
  if (!s.ok()) return s;
  ++stats->blobs_pushed;
  stats->bytes_pushed += blob.size;
  return true;
}

}  // namespace

Result<Descriptor> RegistryClient::PushLayout(const OciLayoutImage& image,
                                              std::string_view repository, PushStats* stats,
                                              const BlobPushedCallback& on_blob,
                                              std::string_view mount_from) const {
  const std::string context = "push " + image.descriptor.digest + " from " + image.dir + " to " +
                              host_ + "/" + std::string(repository);
  PushStats local;
  std::vector<const Descriptor*> blobs = {&image.manifest.config};
  std::set<std::string> seen;  // an image may list one (e.g. empty) layer several times
  for (const Descriptor& layer : image.manifest.layers) blobs.push_back(&layer);
  std::erase_if(blobs, [&](const Descriptor* blob) { return !seen.insert(blob->digest).second; });
  // Makes every blob present; `on_blob` hears of each only on the first round.
  auto ensure_blobs = [&](PushStats* counted, bool report) -> Status {
    for (const Descriptor* blob : blobs) {
      Result<bool> uploaded = EnsureBlob(
          *this, repository, *blob, mount_from,
          [&]() -> Status {
            Result<std::string> path = LayoutBlobPath(image.dir, blob->digest);
            if (!path.ok()) return path.status();
            return PushBlobFromFile(repository, blob->digest, blob->size, *path, counted);
          },
          counted);
      if (!uploaded.ok()) return uploaded.status();
      if (!report) continue;
      if (stats != nullptr) *stats = *counted;
      if (on_blob) on_blob(*blob, !*uploaded);
    }
    return Status::Ok();
  };
  if (Status ensured = ensure_blobs(&local, true); !ensured.ok()) {
    return ensured.WithContext(context);
  }

  // A blob raced by another push is put back before the manifest is put again.
  Result<std::string> digest = PutManifestRepairing(
      repository, image.descriptor.digest, image.manifest.media_type, image.manifest_bytes, [&] {
        PushStats again;  // what this round sent again; blobs it found are counted already
        Status ensured = ensure_blobs(&again, false);
        local.blobs_pushed += again.blobs_pushed;
        local.bytes_pushed += again.bytes_pushed;
        return ensured;
      });
  if (!digest.ok()) return digest.status().WithContext(context);

  Descriptor out;
  out.media_type = image.manifest.media_type;
  out.digest = *digest;
  out.size = static_cast<int64_t>(image.manifest_bytes.size());
  // An image without a platform in its config (an artifact) is still pushed; it just has
  // none to report.
  Result<std::string> config =
      ReadLayoutBlob(image.dir, image.manifest.config.digest, image.manifest.config.size);
  if (config.ok()) {
    Result<Platform> platform = ParseImageConfigPlatform(*config);
    if (platform.ok()) out.platform = *platform;
  }
  if (stats != nullptr) *stats = local;
  return out;
}

Status RegistryClient::CopyImage(std::string_view from, std::string_view to,
                                 std::string_view digest, PushStats* stats) const {
  const std::string context = "registry " + host_ + ": copy " + std::string(from) + "@" +
                              std::string(digest) + " into " + std::string(to);
  Result<bool> present = ManifestExists(to, digest);
  if (!present.ok()) return present.status().WithContext(context);
  if (*present) return Status::Ok();
  Result<FetchedManifest> fetched = GetManifest(from, digest);
  if (!fetched.ok()) return fetched.status().WithContext(context);
  if (!IsManifestMediaType(fetched->media_type)) {
    return Status::InvalidArgument(context + ": it is a " + fetched->media_type +
                                   ", not a single-platform image manifest");
  }
  Result<Manifest> manifest = ParseManifest(fetched->bytes);
  if (!manifest.ok()) return manifest.status().WithContext(context);
  PushStats local;
  std::vector<Descriptor> blobs = {manifest->config};
  blobs.insert(blobs.end(), manifest->layers.begin(), manifest->layers.end());
  std::set<std::string> seen;
  for (const Descriptor& blob : blobs) {
    if (!seen.insert(blob.digest).second) continue;
    // A registry that declines mounts gets the blob through memory: copies are of images
    // already pushed, which the index merge handles as a fallback, not the bulk path.
    Result<bool> uploaded = EnsureBlob(
        *this, to, blob, from,
        [&]() -> Status {
          Result<std::string> bytes = GetBlob(from, blob.digest);
          if (!bytes.ok()) return bytes.status();
          return PushBlob(to, blob.digest, *bytes, &local);
        },
        &local);
    if (!uploaded.ok()) return uploaded.status().WithContext(context);
  }
  Result<std::string> put = PutManifest(to, digest, fetched->media_type, fetched->bytes);
  if (stats != nullptr) *stats = local;
  return put.ok() ? Status::Ok() : put.status().WithContext(context);
}

}  // namespace manifold
