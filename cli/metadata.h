// The --metadata-file JSON that `docker buildx build` writes, for a finished build.
//
// CI pipelines read "containerimage.digest" and "image.name" from this file to pin what
// they deploy; manifold writes the same keys (plus "manifold.build.id") so those steps
// carry over unchanged. Plain functions, safe from any thread.
#pragma once

#include <string>

#include "cli/api_client.h"
#include "common/status.h"

namespace manifold {

// {"containerimage.digest", "image.name" (tags joined by ","), "containerimage.descriptor"
// {mediaType, digest}, "manifold.build.id"} for a succeeded build, pretty-printed.
std::string BuildMetadataJson(const BuildInfo& build);

// Writes BuildMetadataJson to `path` (replacing the file), or an error naming the path.
Status WriteMetadataFile(const std::string& path, const BuildInfo& build);

}  // namespace manifold
