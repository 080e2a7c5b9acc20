#include "agent/cache_mounts_artifact.h"

#include <time.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/digest.h"
#include "common/tar.h"

namespace manifold {

namespace {

constexpr std::string_view kCreatedAnnotation = "org.opencontainers.image.created";

std::string FormatTime(int64_t seconds) {
  time_t t = static_cast<time_t>(seconds);
  struct tm utc = {};
  gmtime_r(&t, &utc);
  char text[32];
  strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

// RFC 3339 in UTC, as FormatTime writes it; -1 when it is not.
int64_t ParseTime(const std::string& text) {
  struct tm utc = {};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &utc);
  if (end == nullptr || *end != '\0') return -1;
  return static_cast<int64_t>(timegm(&utc));
}

nlohmann::json DescriptorJson(const Descriptor& d) {
  return {{"mediaType", d.media_type}, {"digest", d.digest}, {"size", d.size}};
}

}  // namespace

std::string MakeCacheMountsManifest(const Descriptor& config, const Descriptor& layer,
                                    int64_t created) {
  nlohmann::json manifest = {
      {"schemaVersion", 2},
      {"mediaType", kOciManifest},
      {"artifactType", kCacheMountsArtifactType},
      {"config", DescriptorJson(config)},
      {"layers", nlohmann::json::array({DescriptorJson(layer)})},
      {"annotations", {{kCreatedAnnotation, FormatTime(created)}}},
  };
  return manifest.dump();
}

Result<CacheMountsManifest> ParseCacheMountsManifest(std::string_view bytes) {
  nlohmann::json manifest = nlohmann::json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  auto refuse = [](const std::string& why) {
    return Status::InvalidArgument("the cache-mounts manifest " + why);
  };
  if (!manifest.is_object()) return refuse("is not a JSON object");
  const nlohmann::json& config = manifest["config"];
  if (!config.is_object() || config.value("mediaType", "") != kCacheMountsConfig) {
    return refuse("has no config of type " + std::string(kCacheMountsConfig) +
                  " (the tag holds something else)");
  }
  const nlohmann::json& layers = manifest["layers"];
  if (!layers.is_array() || layers.size() != 1 || !layers[0].is_object()) {
    return refuse("does not have exactly one layer");
  }
  CacheMountsManifest out;
  out.layer.media_type = layers[0].value("mediaType", "");
  out.layer.digest = layers[0].value("digest", "");
  out.layer.size = layers[0].value("size", int64_t{-1});
  if (out.layer.media_type != kCacheMountsLayer || !IsValidDigest(out.layer.digest) ||
      out.layer.size < 0) {
    return refuse("has a layer that is not a " + std::string(kCacheMountsLayer) + " blob");
  }
  const nlohmann::json& annotations = manifest["annotations"];
  out.created = annotations.is_object() ? ParseTime(annotations.value(kCreatedAnnotation, "")) : -1;
  if (out.created < 0) return refuse("does not say when it was made");
  return out;
}

bool WithinTtl(int64_t created, int64_t now, uint32_t ttl_seconds) {
  return ttl_seconds == 0 || now - created <= static_cast<int64_t>(ttl_seconds);
}

bool HoldsCacheMounts(const std::string& dir) {
  std::error_code ec;
  for (const auto& top : std::filesystem::directory_iterator(dir, ec)) {
    if (top.path().filename().string().rfind(kBuildahCacheDir, 0) != 0) continue;
    if (!top.is_directory(ec)) return true;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(top.path(), ec)) {
      if (!entry.is_directory(ec)) return true;
    }
  }
  return false;
}

Result<std::string> PackCacheMounts(const std::string& dir, uint64_t max_bytes) {
  std::string archive;
  // buildah's cache directories only (TMPDIR/buildah-cache, -UID when rootless), not the
  // other temporary files a build may have left in its TMPDIR.
  auto others = [](const std::string& path, bool) {
    return path.find('/') == std::string::npos && path.rfind(kBuildahCacheDir, 0) != 0;
  };
  Status written = WriteTar(dir, others, [&](std::string_view bytes) {
    if (archive.size() + bytes.size() > max_bytes) {
      return Status::FailedPrecondition(
          "the cache mounts in " + dir + " are larger than " + std::to_string(max_bytes) +
          " bytes (--cache-mounts-max-bytes), so they stay on this agent");
    }
    archive.append(bytes);
    return Status::Ok();
  });
  if (!written.ok()) return written;
  return archive;
}

Status UnpackCacheMounts(std::string_view archive, const std::string& dir, uint64_t max_bytes) {
  ExtractLimits limits;
  limits.max_total_bytes = max_bytes;
  return ExtractTar(archive, dir, limits).WithContext("unpacking the pulled cache mounts");
}

Status PushCacheMounts(const RegistryClient& registry, const std::string& repository,
                       const std::string& dir, const Platform& platform, int64_t now,
                       uint64_t max_bytes, uint64_t* bytes) {
  Result<std::string> archive = PackCacheMounts(dir, max_bytes);
  if (!archive.ok()) return archive.status();
  *bytes = archive->size();
  const std::string config_bytes =
      nlohmann::json{{"platform", platform.ToString()}, {"created", FormatTime(now)}}.dump();
  Descriptor config = DescribeBlob(kCacheMountsConfig, config_bytes);
  Descriptor layer = DescribeBlob(kCacheMountsLayer, *archive);
  for (const auto& [descriptor, blob] :
       {std::pair{&config, std::string_view(config_bytes)}, {&layer, std::string_view(*archive)}}) {
    Result<bool> there = registry.BlobExists(repository, descriptor->digest);
    if (!there.ok()) return there.status();
    if (*there) continue;
    if (Status s = registry.PushBlob(repository, descriptor->digest, blob); !s.ok()) return s;
  }
  Result<std::string> put = registry.PutManifest(repository, kCacheMountsTag, kOciManifest,
                                                 MakeCacheMountsManifest(config, layer, now));
  return put.ok() ? Status::Ok() : put.status();
}

Result<uint64_t> PullCacheMounts(const RegistryClient& registry, const std::string& repository,
                                 const std::string& dir, int64_t now, uint32_t ttl_seconds,
                                 uint64_t max_bytes) {
  Result<FetchedManifest> fetched = registry.GetManifest(repository, kCacheMountsTag);
  if (!fetched.ok()) return fetched.status();
  Result<CacheMountsManifest> manifest = ParseCacheMountsManifest(fetched->bytes);
  if (!manifest.ok()) return manifest.status();
  if (!WithinTtl(manifest->created, now, ttl_seconds)) {
    return Status::FailedPrecondition("the cache mounts in " + repository + " were pushed at " +
                                      FormatTime(manifest->created) + ", longer ago than the " +
                                      "cache TTL of " + std::to_string(ttl_seconds) + " s");
  }
  if (static_cast<uint64_t>(manifest->layer.size) > max_bytes) {
    return Status::FailedPrecondition(
        "the cache mounts in " + repository + " are " + std::to_string(manifest->layer.size) +
        " bytes, more than this agent's --cache-mounts-max-bytes of " + std::to_string(max_bytes));
  }
  Result<std::string> archive = registry.GetBlob(repository, manifest->layer.digest);
  if (!archive.ok()) return archive.status();
  if (archive->size() != static_cast<uint64_t>(manifest->layer.size)) {
    return Status::InvalidArgument("the cache mounts in " + repository +
                                   " are not the size their manifest says");
  }
  if (Status s = UnpackCacheMounts(*archive, dir, max_bytes); !s.ok()) return s;
  return archive->size();
}

}  // namespace manifold
