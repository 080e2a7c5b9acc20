#include "agent/synthetic_builder.h"

#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "common/digest.h"
#include "common/oci.h"
#include "common/tar.h"

namespace manifold {
namespace {

namespace fs = std::filesystem;

Status WriteFile(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return Status::Internal("synthetic build: cannot write " + path);
  return Status::Ok();
}

// Writes a blob under dir/blobs/sha256 and returns its descriptor.
Result<Descriptor> WriteBlob(const std::string& dir, std::string_view media_type,
                             std::string_view bytes) {
  Descriptor descriptor;
  descriptor.media_type = media_type;
  descriptor.digest = Sha256Digest(bytes);
  descriptor.size = static_cast<int64_t>(bytes.size());
  Status written = WriteFile(dir + "/blobs/sha256/" + DigestHex(descriptor.digest), bytes);
  if (!written.ok()) return written;
  return descriptor;
}

nlohmann::json DescriptorJson(const Descriptor& descriptor) {
  return {{"mediaType", descriptor.media_type},
          {"digest", descriptor.digest},
          {"size", descriptor.size}};
}

// Random, so that no two builds share a layer and every push uploads it.
std::string RandomBytes(uint64_t size) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string bytes(size, '\0');
  for (uint64_t i = 0; i < size; i += 8) {
    uint64_t word = rng();
    std::memcpy(bytes.data() + i, &word, std::min<uint64_t>(8, size - i));
  }
  return bytes;
}

Result<std::string> Gzip(std::string_view data) {
  z_stream stream{};
  // 15 window bits + 16: a gzip wrapper rather than zlib's.
  if (deflateInit2(&stream, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Status::Internal("synthetic build: cannot start gzip");
  }
  std::string out(deflateBound(&stream, data.size()) + 64, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  int result = deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  if (result != Z_STREAM_END) return Status::Internal("synthetic build: gzip failed");
  return out;
}

// The layer: a tar of one directory holding `synthetic.bin`, written through the same
// tar writer build contexts use.
Result<std::string> LayerTar(const std::string& scratch_dir, uint64_t layer_bytes) {
  std::error_code ec;
  fs::create_directories(scratch_dir, ec);
  if (ec) return Status::Internal("synthetic build: cannot create " + scratch_dir);
  Status written = WriteFile(scratch_dir + "/synthetic.bin", RandomBytes(layer_bytes));
  std::string tar;
  if (written.ok()) written = WriteTarFromDirectory(scratch_dir, nullptr, &tar);
  fs::remove_all(scratch_dir, ec);
  if (!written.ok()) return written;
  return tar;
}

}  // namespace

std::string SyntheticBuilder::Name() const { return "synthetic"; }

Status SyntheticBuilder::Validate(const SyntheticBuildOptions& options) {
  if (options.layer_bytes > kMaxLayerBytes) {
    return Status::InvalidArgument("--synthetic-layer-bytes must be at most " +
                                   std::to_string(kMaxLayerBytes) + ", got " +
                                   std::to_string(options.layer_bytes));
  }
  if (options.build_time.count() < 0) {
    return Status::InvalidArgument("--synthetic-build-ms must not be negative");
  }
  return Status::Ok();
}

Status SyntheticBuilder::Build(const BuildRequest& request,
                               const std::function<void(std::string_view output)>& on_output,
                               const std::atomic<bool>* cancel) {
  const std::string platform = request.platform.ToString();
  on_output("manifold: synthetic build for " + platform + ": " +
            std::to_string(options_.layer_bytes) + "-byte random layer" +
            (options_.gzip ? " (gzip)" : " (uncompressed tar)") + " after " +
            std::to_string(options_.build_time.count()) + " ms\n");
  auto until = std::chrono::steady_clock::now() + options_.build_time;
  while (std::chrono::steady_clock::now() < until) {
    if (cancel != nullptr && cancel->load()) {
      return Status::Canceled("synthetic build for " + platform + " canceled");
    }
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        std::chrono::milliseconds(10), until - std::chrono::steady_clock::now()));
  }
  if (cancel != nullptr && cancel->load()) {
    return Status::Canceled("synthetic build for " + platform + " canceled");
  }

  const std::string& dir = request.layout_dir;
  std::error_code ec;
  fs::create_directories(dir + "/blobs/sha256", ec);
  if (ec) return Status::Internal("synthetic build: cannot create " + dir + ": " + ec.message());

  Result<std::string> tar = LayerTar(dir + ".rootfs", options_.layer_bytes);
  if (!tar.ok()) return tar.status();
  const std::string diff_id = Sha256Digest(*tar);
  if (options_.gzip) {
    Result<std::string> compressed = Gzip(*tar);
    if (!compressed.ok()) return compressed.status();
    *tar = std::move(*compressed);
  }
  Result<Descriptor> layer = WriteBlob(dir, options_.gzip ? kOciLayerTarGzip : kOciLayerTar, *tar);
  if (!layer.ok()) return layer.status();

  nlohmann::json config = {
      {"architecture", request.platform.architecture},
      {"os", request.platform.os},
      {"config", {{"Labels", {{"org.manifold.synthetic", "true"}}}}},
      {"rootfs", {{"type", "layers"}, {"diff_ids", {diff_id}}}},
      {"history", {{{"created_by", "manifold synthetic builder"}}}},
  };
  if (!request.platform.variant.empty()) config["variant"] = request.platform.variant;
  Result<Descriptor> config_blob = WriteBlob(dir, kOciConfig, config.dump());
  if (!config_blob.ok()) return config_blob.status();

  nlohmann::json manifest = {{"schemaVersion", 2},
                             {"mediaType", kOciManifest},
                             {"config", DescriptorJson(*config_blob)},
                             {"layers", {DescriptorJson(*layer)}}};
  Result<Descriptor> manifest_blob = WriteBlob(dir, kOciManifest, manifest.dump());
  if (!manifest_blob.ok()) return manifest_blob.status();

  nlohmann::json entry = DescriptorJson(*manifest_blob);
  entry["annotations"] = {{std::string(kRefNameAnnotation), request.image_name}};
  nlohmann::json index = {{"schemaVersion", 2}, {"manifests", {entry}}};
  if (Status s = WriteFile(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})"); !s.ok()) {
    return s;
  }
  if (Status s = WriteFile(dir + "/index.json", index.dump()); !s.ok()) return s;
  on_output("manifold: synthetic image " + manifest_blob->digest + " for " + platform + "\n");
  return Status::Ok();
}

}  // namespace manifold
