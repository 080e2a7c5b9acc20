#include "agent/cache_transfer.h"

#include <chrono>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/digest.h"
#include "common/layout.h"
#include "common/oci.h"
#include "common/reference.h"

namespace manifold {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::string_view kCreatedAnnotation = "org.opencontainers.image.created";

std::string Rfc3339Now() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

// Seconds since the RFC 3339 UTC time `text` ("2026-12-05T14:51:52Z"); nothing if it is
// not one.
std::optional<int64_t> SecondsSince(const std::string& text) {
  std::tm utc{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &utc);
  if (end == nullptr) return std::nullopt;
  return static_cast<int64_t>(std::time(nullptr) - timegm(&utc));
}

// Writes one blob into the layout unless it is there, adding what it pulled to *pulled.
Status FetchBlob(const RegistryClient& client, const std::string& repository,
                 const std::string& digest, const std::string& dir, uint64_t* pulled) {
  Result<std::string> path = LayoutBlobPath(dir, digest);
  if (!path.ok()) return path.status();
  if (fs::exists(*path)) return Status::Ok();
  // Into the file as it arrives: a cached layer can be larger than the agent's memory.
  Result<uint64_t> size = client.GetBlobToFile(repository, digest, *path);
  if (!size.ok()) return size.status();
  *pulled += *size;
  return Status::Ok();
}

// Fetches the images of one cache ref into the layout, appending their descriptors, unless
// `held` says the store has them; either way fetch->refs gets them.
Status FetchRef(const std::string& cache_ref, uint32_t ttl_seconds, const RegistryOptions& options,
                const HeldCaches* held, const std::string& dir, json* manifests, CacheFetch* fetch,
                const std::function<void(const std::string&)>& say) {
  uint64_t* pulled = &fetch->bytes;
  Result<Reference> ref = ParseReference(cache_ref);
  if (!ref.ok()) return ref.status();
  RegistryClient client(ref->registry, options);
  Result<FetchedManifest> fetched = client.GetManifest(ref->repository, ref->tag);
  if (!fetched.ok()) return fetched.status();
  *pulled += fetched->bytes.size();
  Result<Index> index = ParseIndex(fetched->bytes);
  if (!index.ok() || !IsIndexMediaType(fetched->media_type)) {
    return Status::InvalidArgument("it is not a registry cache index written by manifold");
  }
  auto created = index->annotations.find(std::string(kCreatedAnnotation));
  std::optional<int64_t> age =
      created == index->annotations.end() ? std::nullopt : SecondsSince(created->second);
  if (ttl_seconds != 0 && (!age || *age > static_cast<int64_t>(ttl_seconds))) {
    return Status::FailedPrecondition("it was pushed more than the cache TTL (" +
                                      std::to_string(ttl_seconds) + " s) ago");
  }
  std::vector<std::string> images;
  for (const Descriptor& child : index->manifests) images.push_back(child.digest);
  if (held != nullptr && held->Holds(cache_ref, images)) {
    say("registry cache " + cache_ref + ": its " + std::to_string(images.size()) +
        " step image(s) are in this agent's store already");
    fetch->refs[cache_ref] = std::move(images);
    return Status::Ok();
  }
  for (const Descriptor& child : index->manifests) {
    Result<FetchedManifest> image = client.GetManifest(ref->repository, child.digest);
    if (!image.ok()) return image.status();
    Result<Manifest> manifest = ParseManifest(image->bytes);
    if (!manifest.ok()) return manifest.status();
    *pulled += image->bytes.size();
    if (Status s = WriteLayoutBlob(dir, image->digest, image->bytes); !s.ok()) return s;
    if (Status s = FetchBlob(client, ref->repository, manifest->config.digest, dir, pulled);
        !s.ok()) {
      return s;
    }
    for (const Descriptor& layer : manifest->layers) {
      if (Status s = FetchBlob(client, ref->repository, layer.digest, dir, pulled); !s.ok()) {
        return s;
      }
    }
    manifests->push_back(
        {{"mediaType", image->media_type},
         {"digest", image->digest},
         {"size", image->bytes.size()},
         {"annotations",
          {{std::string(kRefNameAnnotation), "cache-" + std::to_string(manifests->size() + 1)}}}});
  }
  say("fetched registry cache " + cache_ref + ": " + std::to_string(index->manifests.size()) +
      " step image(s)");
  fetch->refs[cache_ref] = std::move(images);
  return Status::Ok();
}

}  // namespace

std::string CacheImageName(const std::string& repository, const Platform& platform) {
  return "manifold-cache-" +
         DigestHex(Sha256Digest(repository + " " + platform.ToString())).substr(0, 24);
}

CacheFetch FetchRegistryCache(const RegistryCacheSpec& cache, const RegistryOptions& options,
                              const HeldCaches* held, const std::string& dir,
                              const std::function<void(const std::string&)>& say) {
  CacheFetch fetch;
  std::error_code ec;
  fs::create_directories(dir + "/blobs/sha256", ec);
  if (ec) {
    say("registry cache not used: cannot create " + dir + ": " + ec.message());
    return fetch;
  }
  json manifests = json::array();
  for (const std::string& cache_ref : cache.from) {
    const size_t before = manifests.size();
    Status s = FetchRef(cache_ref, cache.ttl_seconds, options, held, dir, &manifests, &fetch, say);
    if (!s.ok()) {
      manifests.erase(manifests.begin() + static_cast<std::ptrdiff_t>(before), manifests.end());
      fetch.refs.erase(cache_ref);
      say("registry cache " + cache_ref + " not used: " + s.message());
    }
  }
  json index = {{"schemaVersion", 2}, {"mediaType", kOciIndex}, {"manifests", manifests}};
  if (!WriteLayoutIndex(dir, index.dump()).ok()) {
    say("registry cache not used: cannot write the layout in " + dir);
    fetch.refs.clear();
    return fetch;
  }
  fetch.images = static_cast<int>(manifests.size());
  return fetch;
}

Status PushRegistryCache(const std::string& dir, const std::string& cache_ref,
                         const RegistryOptions& options, PushStats* stats,
                         std::vector<std::string>* images) {
  images->clear();
  Result<Reference> ref = ParseReference(cache_ref);
  if (!ref.ok()) return ref.status();
  Result<std::vector<std::string>> names = LayoutRefNames(dir);
  if (!names.ok()) return names.status();
  if (names->empty()) return Status::NotFound("the build left no step images to cache");
  RegistryClient client(ref->registry, options);
  json manifests = json::array();
  std::vector<std::string> pushed_images;
  for (const std::string& name : *names) {
    Result<OciLayoutImage> image = OpenLayoutImage(dir, name);
    if (!image.ok()) return image.status();
    Result<Descriptor> pushed = client.PushLayout(*image, ref->repository, stats);
    if (!pushed.ok()) return pushed.status();
    manifests.push_back(
        {{"mediaType", pushed->media_type}, {"digest", pushed->digest}, {"size", pushed->size}});
    pushed_images.push_back(pushed->digest);
  }
  json index = {{"schemaVersion", 2},
                {"mediaType", kOciIndex},
                {"manifests", manifests},
                {"annotations", {{std::string(kCreatedAnnotation), Rfc3339Now()}}}};
  const std::string bytes = index.dump();
  Result<std::string> put = client.PutManifest(ref->repository, ref->tag, kOciIndex, bytes);
  if (!put.ok()) return put.status();
  *images = std::move(pushed_images);
  return Status::Ok();
}

}  // namespace manifold
