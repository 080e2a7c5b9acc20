#include "common/oci.h"

#include <nlohmann/json.hpp>

#include "common/digest.h"

namespace manifold {
namespace {

using json = nlohmann::json;

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Parses without exceptions; a discarded value means the bytes are not JSON.
Result<json> ParseJsonObject(std::string_view bytes, std::string_view what) {
  json j = json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument(std::string(what) + " is not valid JSON");
  if (!j.is_object()) return Status::InvalidArgument(std::string(what) + " is not a JSON object");
  return j;
}

// Reads an optional string field; absent is "", any other type is an error.
Status OptionalString(const json& object, const char* key, std::string_view where,
                      std::string* out) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return Status::Ok();
  if (!it->is_string()) {
    return Status::InvalidArgument(std::string(where) + ": field " + Quote(key) +
                                   " is not a string");
  }
  *out = it->get<std::string>();
  return Status::Ok();
}

Status RequiredString(const json& object, const char* key, std::string_view where,
                      std::string* out) {
  if (!object.contains(key)) {
    return Status::InvalidArgument(std::string(where) + ": field " + Quote(key) + " is missing");
  }
  Status s = OptionalString(object, key, where, out);
  if (s.ok() && out->empty()) {
    return Status::InvalidArgument(std::string(where) + ": field " + Quote(key) + " is empty");
  }
  return s;
}

Status ParseAnnotations(const json& object, std::string_view where,
                        std::map<std::string, std::string>* out) {
  auto it = object.find("annotations");
  if (it == object.end() || it->is_null()) return Status::Ok();
  if (!it->is_object()) {
    return Status::InvalidArgument(std::string(where) + ": annotations are not a JSON object");
  }
  for (const auto& [key, value] : it->items()) {
    if (!value.is_string()) {
      return Status::InvalidArgument(std::string(where) + ": annotation " + Quote(key) +
                                     " is not a string");
    }
    (*out)[key] = value.get<std::string>();
  }
  return Status::Ok();
}

// Platform exactly as written (not normalised): indexes made by other tools list
// entries such as "unknown/unknown" for attestations that ParsePlatform would refuse.
Result<Platform> ParseDescriptorPlatform(const json& j, std::string_view where) {
  if (!j.is_object()) {
    return Status::InvalidArgument(std::string(where) + ": platform is not a JSON object");
  }
  Platform p;
  std::string context = std::string(where) + " platform";
  Status s = RequiredString(j, "os", context, &p.os);
  if (s.ok()) s = RequiredString(j, "architecture", context, &p.architecture);
  if (s.ok()) s = OptionalString(j, "variant", context, &p.variant);
  if (!s.ok()) return s;
  return p;
}

Result<Descriptor> ParseDescriptor(const json& j, const std::string& where) {
  if (!j.is_object()) return Status::InvalidArgument(where + " is not a JSON object");
  Descriptor d;
  Status s = RequiredString(j, "mediaType", where, &d.media_type);
  if (s.ok()) s = RequiredString(j, "digest", where, &d.digest);
  if (!s.ok()) return s;
  if (!IsValidDigest(d.digest)) {
    return Status::InvalidArgument(where + ": digest " + Quote(d.digest) +
                                   " is not of the form sha256:<64 lowercase hex digits>");
  }
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_integer() ||
      (size->is_number_unsigned() && size->get<uint64_t>() > uint64_t{INT64_MAX})) {
    return Status::InvalidArgument(where + ": field \"size\" is missing or not an integer");
  }
  d.size = size->get<int64_t>();
  if (d.size < 0) return Status::InvalidArgument(where + ": size is negative");
  if (auto p = j.find("platform"); p != j.end() && !p->is_null()) {
    Result<Platform> platform = ParseDescriptorPlatform(*p, where);
    if (!platform.ok()) return platform.status();
    d.platform = *platform;
  }
  s = ParseAnnotations(j, where, &d.annotations);
  if (!s.ok()) return s;
  return d;
}

Status CheckSchemaVersion(const json& j, std::string_view what) {
  auto it = j.find("schemaVersion");
  if (it == j.end() || !it->is_number_integer()) {
    return Status::InvalidArgument(std::string(what) + ": schemaVersion is missing");
  }
  int64_t version = it->get<int64_t>();
  if (version == 1) {
    return Status::InvalidArgument(std::string(what) +
                                   " is a Docker schema 1 manifest, which manifold does not "
                                   "support; rebuild the image with a current builder");
  }
  if (version != 2) {
    return Status::InvalidArgument(std::string(what) + ": schemaVersion " +
                                   std::to_string(version) + " is not 2");
  }
  return Status::Ok();
}

nlohmann::ordered_json PlatformJson(const Platform& p) {
  nlohmann::ordered_json out;
  out["architecture"] = p.architecture;
  out["os"] = p.os;
  if (!p.variant.empty()) out["variant"] = p.variant;
  return out;
}

Result<Manifest> ParseManifestJson(const json& j) {
  Status s = CheckSchemaVersion(j, "manifest");
  if (!s.ok()) return s;
  Manifest m;
  s = OptionalString(j, "mediaType", "manifest", &m.media_type);
  if (!s.ok()) return s;
  if (m.media_type.empty()) {
    if (j.contains("manifests")) {
      return Status::InvalidArgument(
          "expected a single-platform image manifest but got an image index (it lists "
          "\"manifests\")");
    }
    m.media_type = std::string(kOciManifest);
  } else if (IsIndexMediaType(m.media_type)) {
    return Status::InvalidArgument("expected a single-platform image manifest but got an index (" +
                                   m.media_type + ")");
  } else if (!IsManifestMediaType(m.media_type)) {
    return Status::InvalidArgument("unsupported manifest media type " + Quote(m.media_type) +
                                   "; expected " + std::string(kOciManifest) + " or " +
                                   std::string(kDockerManifest));
  }
  auto config = j.find("config");
  if (config == j.end()) return Status::InvalidArgument("manifest: field \"config\" is missing");
  Result<Descriptor> config_descriptor = ParseDescriptor(*config, "manifest config");
  if (!config_descriptor.ok()) return config_descriptor.status();
  m.config = std::move(config_descriptor).value();
  auto layers = j.find("layers");
  if (layers == j.end() || !layers->is_array()) {
    return Status::InvalidArgument("manifest: field \"layers\" is missing or not an array");
  }
  for (size_t i = 0; i < layers->size(); ++i) {
    Result<Descriptor> layer = ParseDescriptor((*layers)[i], "manifest layer " + std::to_string(i));
    if (!layer.ok()) return layer.status();
    m.layers.push_back(std::move(layer).value());
  }
  s = ParseAnnotations(j, "manifest", &m.annotations);
  if (!s.ok()) return s;
  return m;
}

Result<Index> ParseIndexJson(const json& j) {
  Status s = CheckSchemaVersion(j, "index");
  if (!s.ok()) return s;
  Index index;
  s = OptionalString(j, "mediaType", "index", &index.media_type);
  if (!s.ok()) return s;
  if (index.media_type.empty()) {
    if (j.contains("config") || j.contains("layers")) {
      return Status::InvalidArgument(
          "expected an image index but got a single-platform manifest (it has \"config\" and "
          "\"layers\")");
    }
    index.media_type = std::string(kOciIndex);
  } else if (IsManifestMediaType(index.media_type)) {
    return Status::InvalidArgument("expected an image index but got a single-platform manifest (" +
                                   index.media_type + ")");
  } else if (!IsIndexMediaType(index.media_type)) {
    return Status::InvalidArgument("unsupported index media type " + Quote(index.media_type) +
                                   "; expected " + std::string(kOciIndex) + " or " +
                                   std::string(kDockerManifestList));
  }
  auto manifests = j.find("manifests");
  if (manifests == j.end() || !manifests->is_array()) {
    return Status::InvalidArgument("index: field \"manifests\" is missing or not an array");
  }
  for (size_t i = 0; i < manifests->size(); ++i) {
    Result<Descriptor> child = ParseDescriptor((*manifests)[i], "index entry " + std::to_string(i));
    if (!child.ok()) return child.status();
    index.manifests.push_back(std::move(child).value());
  }
  s = ParseAnnotations(j, "index", &index.annotations);
  if (!s.ok()) return s;
  return index;
}

Result<std::string> BuildIndexUnchecked(const std::vector<IndexChild>& children,
                                        const std::map<std::string, std::string>& annotations,
                                        std::string* media_type) {
  if (children.empty()) {
    return Status::InvalidArgument("cannot build an image index with no platforms");
  }
  const std::string& first_type = children.front().manifest.media_type;
  const bool docker = first_type == kDockerManifest;
  for (size_t i = 0; i < children.size(); ++i) {
    const IndexChild& child = children[i];
    const std::string name = child.platform.os.empty() || child.platform.architecture.empty()
                                 ? "entry " + std::to_string(i)
                                 : child.platform.ToString();
    if (child.platform.os.empty() || child.platform.architecture.empty()) {
      return Status::InvalidArgument("index " + name + " (" + child.manifest.digest +
                                     ") has no os or architecture");
    }
    if (!IsManifestMediaType(child.manifest.media_type)) {
      return Status::InvalidArgument(
          "index child " + name + " has media type " + Quote(child.manifest.media_type) +
          "; only single-platform manifests (" + std::string(kOciManifest) + ", " +
          std::string(kDockerManifest) + ") can be listed");
    }
    if (child.manifest.media_type != first_type) {
      return Status::InvalidArgument(
          "cannot list OCI and Docker manifests in one index: " +
          children.front().platform.ToString() + " is " + first_type + " but " + name + " is " +
          child.manifest.media_type +
          "; clients expect one format per index, so build every platform with builders that "
          "emit the same format");
    }
    if (!IsValidDigest(child.manifest.digest)) {
      return Status::InvalidArgument("index child " + name + " has an invalid digest " +
                                     Quote(child.manifest.digest));
    }
    if (child.manifest.size <= 0) {
      return Status::InvalidArgument("index child " + name + " (" + child.manifest.digest +
                                     ") has size " + std::to_string(child.manifest.size));
    }
    for (size_t k = 0; k < i; ++k) {
      if (children[k].platform == child.platform) {
        return Status::InvalidArgument("platform " + name + " is listed twice (" +
                                       children[k].manifest.digest + " and " +
                                       child.manifest.digest +
                                       "); an index has one image per "
                                       "platform");
      }
    }
    if (docker && !child.manifest.annotations.empty()) {
      return Status::InvalidArgument("index child " + name +
                                     " has annotations, which a Docker manifest list cannot "
                                     "carry; build OCI images to use annotations");
    }
  }
  if (docker && !annotations.empty()) {
    return Status::InvalidArgument(
        "index annotations need an OCI image index, but the platforms' images are Docker "
        "schema2 manifests, whose manifest list cannot carry annotations; build OCI images or "
        "drop the annotations");
  }

  nlohmann::ordered_json out;
  out["schemaVersion"] = 2;
  out["mediaType"] = std::string(docker ? kDockerManifestList : kOciIndex);
  nlohmann::ordered_json manifests = nlohmann::ordered_json::array();
  for (const IndexChild& child : children) {
    nlohmann::ordered_json entry;
    entry["mediaType"] = child.manifest.media_type;
    entry["digest"] = child.manifest.digest;
    entry["size"] = child.manifest.size;
    entry["platform"] = PlatformJson(child.platform);
    if (!child.manifest.annotations.empty()) entry["annotations"] = child.manifest.annotations;
    manifests.push_back(std::move(entry));
  }
  out["manifests"] = std::move(manifests);
  if (!annotations.empty()) out["annotations"] = annotations;
  std::string bytes = out.dump();  // throws for non-UTF-8 strings: leave *media_type alone
  *media_type = docker ? std::string(kDockerManifestList) : std::string(kOciIndex);
  return bytes;
}

}  // namespace

bool IsManifestMediaType(std::string_view media_type) {
  return media_type == kOciManifest || media_type == kDockerManifest;
}

bool IsIndexMediaType(std::string_view media_type) {
  return media_type == kOciIndex || media_type == kDockerManifestList;
}

// The nlohmann calls above check types before every access; the catch blocks guard the
// few that can still throw (dumping strings that are not UTF-8) so that no input, from a
// registry or a user, escapes as an exception.

Result<Manifest> ParseManifest(std::string_view bytes) {
  try {
    Result<json> j = ParseJsonObject(bytes, "manifest");
    if (!j.ok()) return j.status();
    return ParseManifestJson(*j);
  } catch (const json::exception& e) {
    return Status::InvalidArgument(std::string("malformed manifest: ") + e.what());
  }
}

Result<Index> ParseIndex(std::string_view bytes) {
  try {
    Result<json> j = ParseJsonObject(bytes, "index");
    if (!j.ok()) return j.status();
    return ParseIndexJson(*j);
  } catch (const json::exception& e) {
    return Status::InvalidArgument(std::string("malformed index: ") + e.what());
  }
}

Result<Platform> ParseImageConfigPlatform(std::string_view config_json) {
  try {
    Result<json> j = ParseJsonObject(config_json, "image config");
    if (!j.ok()) return j.status();
    std::string os, architecture, variant;
    Status s = RequiredString(*j, "os", "image config", &os);
    if (s.ok()) s = RequiredString(*j, "architecture", "image config", &architecture);
    if (s.ok()) s = OptionalString(*j, "variant", "image config", &variant);
    if (!s.ok()) return s;
    std::string text = os + "/" + architecture + (variant.empty() ? "" : "/" + variant);
    Result<Platform> platform = ParsePlatform(text);
    if (!platform.ok()) return platform.status().WithContext("image config platform");
    return platform;
  } catch (const json::exception& e) {
    return Status::InvalidArgument(std::string("malformed image config: ") + e.what());
  }
}

Result<std::string> BuildIndex(const std::vector<IndexChild>& children,
                               const std::map<std::string, std::string>& annotations,
                               std::string* media_type) {
  try {
    return BuildIndexUnchecked(children, annotations, media_type);
  } catch (const json::exception& e) {
    // Raised for strings that are not UTF-8, e.g. an annotation a user typed.
    return Status::InvalidArgument(std::string("cannot encode the image index: ") + e.what());
  }
}

Descriptor DescribeBlob(std::string_view media_type, std::string_view bytes) {
  Descriptor blob;
  blob.media_type = media_type;
  blob.digest = Sha256Digest(bytes);
  blob.size = static_cast<int64_t>(bytes.size());
  return blob;
}

}  // namespace manifold
