#include "common/layout.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/digest.h"

namespace manifold {
namespace {

namespace fs = std::filesystem;

// Reads a whole file, refusing ones larger than max_bytes before reading them.
Result<std::string> ReadSmallFile(const std::string& path, int64_t max_bytes) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) return Status::NotFound("cannot read " + path + ": " + ec.message());
  if (static_cast<int64_t>(size) > max_bytes) {
    return Status::InvalidArgument(path + " is " + std::to_string(size) + " bytes, more than the " +
                                   std::to_string(max_bytes) + " this reader accepts");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open " + path);
  std::string data(static_cast<size_t>(size), '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  if (static_cast<size_t>(in.gcount()) != data.size()) {
    return Status::Internal("short read from " + path + " (it changed while being read?)");
  }
  return data;
}

Status WriteWholeFile(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  return out ? Status::Ok() : Status::Internal("cannot write " + path);
}

Status CheckLayoutMarker(const std::string& dir) {
  const std::string path = dir + "/oci-layout";
  Result<std::string> bytes = ReadSmallFile(path, 1 << 16);
  if (!bytes.ok()) {
    return Status::NotFound(dir + " is not an OCI image layout: " + bytes.status().message());
  }
  nlohmann::json j = nlohmann::json::parse(*bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("imageLayoutVersion") ||
      !j["imageLayoutVersion"].is_string()) {
    return Status::InvalidArgument(path +
                                   " is not a valid oci-layout file (expected "
                                   "{\"imageLayoutVersion\": \"1.0.0\"})");
  }
  const std::string version = j["imageLayoutVersion"].get<std::string>();
  if (version.substr(0, 2) != "1.") {
    return Status::InvalidArgument(path + " declares image layout version " + version +
                                   "; manifold reads version 1.x");
  }
  return Status::Ok();
}

std::string RefName(const Descriptor& d) {
  auto it = d.annotations.find(std::string(kRefNameAnnotation));
  return it == d.annotations.end() ? "" : it->second;
}

std::string ListRefNames(const std::vector<Descriptor>& entries) {
  std::string out;
  for (const Descriptor& d : entries) {
    if (!out.empty()) out += ", ";
    std::string name = RefName(d);
    out += name.empty() ? "<unnamed " + d.digest + ">" : name;
  }
  return out;
}

// The layout's index.json, after checking its oci-layout marker.
Result<Index> ReadLayoutIndex(const std::string& dir) {
  Status s = CheckLayoutMarker(dir);
  if (!s.ok()) return s;
  const std::string index_path = dir + "/index.json";
  Result<std::string> index_bytes = ReadSmallFile(index_path, int64_t{16} << 20);
  if (!index_bytes.ok()) return index_bytes.status();
  Result<Index> index = ParseIndex(*index_bytes);
  if (!index.ok()) return index.status().WithContext(index_path);
  return index;
}

}  // namespace

Result<std::string> LayoutBlobPath(const std::string& dir, std::string_view digest) {
  if (!IsValidDigest(digest)) {
    return Status::InvalidArgument("\"" + std::string(digest) +
                                   "\" is not a sha256 digest; cannot locate it in " + dir);
  }
  return dir + "/blobs/sha256/" + DigestHex(digest);
}

Status WriteLayoutBlob(const std::string& dir, std::string_view digest, std::string_view bytes) {
  Result<std::string> path = LayoutBlobPath(dir, digest);
  if (!path.ok()) return path.status();
  return WriteWholeFile(*path, bytes);
}

Status WriteLayoutIndex(const std::string& dir, std::string_view index_json) {
  if (Status s = WriteWholeFile(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
      !s.ok()) {
    return s;
  }
  return WriteWholeFile(dir + "/index.json", index_json);
}

Result<std::string> ReadLayoutBlob(const std::string& dir, std::string_view digest,
                                   int64_t expected_size, int64_t max_bytes) {
  Result<std::string> path = LayoutBlobPath(dir, digest);
  if (!path.ok()) return path.status();
  Result<std::string> bytes = ReadSmallFile(*path, max_bytes);
  if (!bytes.ok()) {
    return bytes.status().WithContext("blob " + std::string(digest) + " of layout " + dir);
  }
  if (expected_size >= 0 && static_cast<int64_t>(bytes->size()) != expected_size) {
    return Status::InvalidArgument("blob " + *path + " is " + std::to_string(bytes->size()) +
                                   " bytes but its descriptor says " +
                                   std::to_string(expected_size));
  }
  const std::string actual = Sha256Digest(*bytes);
  if (actual != digest) {
    return Status::InvalidArgument("blob " + *path + " is corrupt: its content has digest " +
                                   actual);
  }
  return bytes;
}

Result<std::vector<std::string>> LayoutRefNames(const std::string& dir) {
  Result<Index> index = ReadLayoutIndex(dir);
  if (!index.ok()) return index.status();
  std::vector<std::string> names;
  for (const Descriptor& d : index->manifests) {
    if (std::string name = RefName(d); !name.empty()) names.push_back(std::move(name));
  }
  return names;
}

Result<OciLayoutImage> OpenLayoutImage(const std::string& dir, std::string_view ref_name) {
  Result<Index> index = ReadLayoutIndex(dir);
  if (!index.ok()) return index.status();

  std::vector<Descriptor> matches;
  for (const Descriptor& d : index->manifests) {
    if (ref_name.empty() || RefName(d) == ref_name) matches.push_back(d);
  }
  if (index->manifests.empty()) {
    return Status::NotFound("OCI layout " + dir + " holds no images (its index.json is empty)");
  }
  if (matches.empty()) {
    return Status::NotFound("OCI layout " + dir + " has no image named \"" + std::string(ref_name) +
                            "\"; it has: " + ListRefNames(index->manifests));
  }
  if (matches.size() > 1) {
    return Status::InvalidArgument(
        "OCI layout " + dir + " holds " + std::to_string(matches.size()) + " images" +
        (ref_name.empty() ? "" : " named \"" + std::string(ref_name) + "\"") + " (" +
        ListRefNames(matches) + "); name the one to use");
  }

  OciLayoutImage image;
  image.dir = dir;
  image.descriptor = matches.front();
  const Descriptor& d = image.descriptor;
  if (IsIndexMediaType(d.media_type)) {
    return Status::InvalidArgument("OCI layout " + dir + " entry " + d.digest +
                                   " is an image index; manifold pushes one single-platform "
                                   "image per job");
  }
  if (!IsManifestMediaType(d.media_type)) {
    return Status::InvalidArgument("OCI layout " + dir + " entry " + d.digest +
                                   " has media type \"" + d.media_type +
                                   "\", which is not an image manifest");
  }
  Result<std::string> bytes = ReadLayoutBlob(dir, d.digest, d.size);
  if (!bytes.ok()) return bytes.status();
  image.manifest_bytes = std::move(bytes).value();
  Result<Manifest> manifest = ParseManifest(image.manifest_bytes);
  if (!manifest.ok()) return manifest.status().WithContext("manifest " + d.digest + " in " + dir);
  image.manifest = std::move(manifest).value();
  if (image.manifest.media_type != d.media_type) {
    return Status::InvalidArgument("OCI layout " + dir + ": index.json says manifest " + d.digest +
                                   " is " + d.media_type + " but the manifest says " +
                                   image.manifest.media_type);
  }

  // Catch a half-written layout here, with the path in the message, rather than halfway
  // through a push.
  std::vector<const Descriptor*> blobs = {&image.manifest.config};
  for (const Descriptor& layer : image.manifest.layers) blobs.push_back(&layer);
  for (const Descriptor* blob : blobs) {
    Result<std::string> path = LayoutBlobPath(dir, blob->digest);
    if (!path.ok()) return path.status();
    std::error_code ec;
    const auto size = fs::file_size(*path, ec);
    if (ec) {
      return Status::NotFound("OCI layout " + dir + " is missing blob " + blob->digest +
                              " that manifest " + d.digest + " references (" + ec.message() + ")");
    }
    if (static_cast<int64_t>(size) != blob->size) {
      return Status::InvalidArgument("blob " + *path + " is " + std::to_string(size) +
                                     " bytes but manifest " + d.digest + " says " +
                                     std::to_string(blob->size));
    }
  }
  return image;
}

}  // namespace manifold
