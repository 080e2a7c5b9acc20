#include "cli/metadata.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

namespace manifold {

std::string BuildMetadataJson(const BuildInfo& build) {
  std::string names;
  for (const std::string& tag : build.tags) {
    if (!names.empty()) names += ",";
    names += tag;
  }
  nlohmann::json descriptor = {{"digest", build.index_digest}};
  if (!build.index_media_type.empty()) descriptor["mediaType"] = build.index_media_type;
  nlohmann::json metadata = {
      {"containerimage.digest", build.index_digest},
      {"image.name", names},
      {"containerimage.descriptor", descriptor},
      {"manifold.build.id", build.id},
  };
  return metadata.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

Status WriteMetadataFile(const std::string& path, const BuildInfo& build) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file) {
    return Status::FailedPrecondition("cannot write the metadata file " + path + ": " +
                                      std::strerror(errno));
  }
  file << BuildMetadataJson(build);
  file.close();
  if (!file) {
    return Status::FailedPrecondition("cannot write the metadata file " + path + ": " +
                                      std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace manifold
