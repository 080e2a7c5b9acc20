#include "tests/support/test_image.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/digest.h"

namespace manifold::test {
namespace {

using ojson = nlohmann::ordered_json;

void PutOctal(std::string* block, size_t offset, size_t width, uint64_t value) {
  // width - 1 octal digits, zero-padded, then NUL.
  std::string digits(width - 1, '0');
  for (size_t i = width - 1; i > 0 && value > 0; --i, value >>= 3) {
    digits[i - 1] = static_cast<char>('0' + (value & 7));
  }
  block->replace(offset, width - 1, digits);
  (*block)[offset + width - 1] = '\0';
}

ojson DescriptorJson(const Descriptor& d) {
  ojson j;
  j["mediaType"] = d.media_type;
  j["digest"] = d.digest;
  j["size"] = d.size;
  if (!d.annotations.empty()) j["annotations"] = d.annotations;
  return j;
}

Status WriteFile(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return Status::Internal("cannot write " + path);
  return Status::Ok();
}

}  // namespace

std::string TarWithOneFile(std::string_view name, std::string_view content) {
  std::string header(512, '\0');
  header.replace(0, std::min<size_t>(name.size(), 99), name.substr(0, 99));
  PutOctal(&header, 100, 8, 0644);
  PutOctal(&header, 108, 8, 0);
  PutOctal(&header, 116, 8, 0);
  PutOctal(&header, 124, 12, content.size());
  PutOctal(&header, 136, 12, 0);
  header[156] = '0';
  header.replace(257, 6, std::string("ustar\0", 6));
  header.replace(263, 2, "00");
  // The checksum is computed with its own field read as spaces.
  header.replace(148, 8, "        ");
  unsigned sum = 0;
  for (unsigned char c : header) sum += c;
  PutOctal(&header, 148, 7, sum);
  header[155] = ' ';

  std::string tar = header;
  tar.append(content);
  tar.append((512 - content.size() % 512) % 512, '\0');
  tar.append(1024, '\0');  // end-of-archive marker: two zero blocks
  return tar;
}

TestImage MakeTestImage(const Platform& platform, std::string_view content,
                        bool docker_media_types) {
  TestImage image;
  image.platform = platform;
  std::string layer = TarWithOneFile("hello.txt", content);
  Descriptor layer_descriptor;
  layer_descriptor.media_type = docker_media_types ? "application/vnd.docker.image.rootfs.diff.tar"
                                                   : std::string(kOciLayerTar);
  layer_descriptor.digest = Sha256Digest(layer);
  layer_descriptor.size = static_cast<int64_t>(layer.size());

  ojson config;
  config["architecture"] = platform.architecture;
  config["os"] = platform.os;
  if (!platform.variant.empty()) config["variant"] = platform.variant;
  config["config"] = {{"Cmd", {"/hello.txt"}}};
  // Uncompressed layer: its diff_id is its own digest.
  config["rootfs"] = {{"type", "layers"}, {"diff_ids", {layer_descriptor.digest}}};
  image.config_bytes = config.dump();
  image.config.media_type =
      docker_media_types ? std::string(kDockerConfig) : std::string(kOciConfig);
  image.config.digest = Sha256Digest(image.config_bytes);
  image.config.size = static_cast<int64_t>(image.config_bytes.size());

  image.layer_bytes.push_back(std::move(layer));
  image.layers.push_back(layer_descriptor);

  ojson manifest;
  manifest["schemaVersion"] = 2;
  manifest["mediaType"] =
      docker_media_types ? std::string(kDockerManifest) : std::string(kOciManifest);
  manifest["config"] = DescriptorJson(image.config);
  manifest["layers"] = ojson::array({DescriptorJson(layer_descriptor)});
  image.manifest_bytes = manifest.dump();
  image.manifest.media_type = manifest["mediaType"].get<std::string>();
  image.manifest.digest = Sha256Digest(image.manifest_bytes);
  image.manifest.size = static_cast<int64_t>(image.manifest_bytes.size());
  image.manifest.platform = platform;
  return image;
}

Result<std::string> WriteLayoutBlob(const std::string& dir, std::string_view bytes) {
  const std::string digest = Sha256Digest(bytes);
  const std::string blob_dir = dir + "/blobs/sha256";
  std::error_code ec;
  std::filesystem::create_directories(blob_dir, ec);
  if (ec) return Status::Internal("cannot create " + blob_dir + ": " + ec.message());
  Status s = WriteFile(blob_dir + "/" + DigestHex(digest), bytes);
  if (!s.ok()) return s;
  return digest;
}

Status WriteTestLayout(const std::string& dir, const std::vector<LayoutEntry>& entries) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::Internal("cannot create " + dir + ": " + ec.message());
  Status s = WriteFile(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  if (!s.ok()) return s;
  ojson manifests = ojson::array();
  for (const LayoutEntry& entry : entries) {
    const TestImage& image = *entry.image;
    std::vector<std::string_view> blobs = {image.config_bytes, image.manifest_bytes};
    for (const std::string& layer : image.layer_bytes) blobs.push_back(layer);
    for (std::string_view blob : blobs) {
      Result<std::string> written = WriteLayoutBlob(dir, blob);
      if (!written.ok()) return written.status();
    }
    Descriptor d = image.manifest;
    if (!entry.ref_name.empty()) d.annotations[std::string(kRefNameAnnotation)] = entry.ref_name;
    manifests.push_back(DescriptorJson(d));
  }
  ojson index;
  index["schemaVersion"] = 2;
  index["mediaType"] = std::string(kOciIndex);
  index["manifests"] = std::move(manifests);
  return WriteFile(dir + "/index.json", index.dump());
}

}  // namespace manifold::test
