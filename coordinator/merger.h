// Merger: turns a build whose every platform succeeded into one pushed image index.
//
// The platform of each child is read from the image config in the registry, not taken
// on the agent's word, so an agent that built the wrong platform fails the build instead
// of publishing a wrong index. Stateless and thread-safe; it does blocking registry I/O
// and runs on the coordinator's merge thread, never on its agent loop.
#pragma once

#include <string>

#include "common/registry.h"
#include "common/status.h"
#include "coordinator/store.h"

namespace manifold {

struct PushedIndex {
  std::string digest;
  std::string media_type;
};

// Builds the index (OCI index for OCI children, Docker manifest list for Docker children)
// from the build's succeeded jobs, checks every child exists in each tag's repository,
// and PUTs the index under every tag. An OCI index is annotated with
// org.opencontainers.image.created (when merging began), .source and .revision from the
// build, then the build's own index annotations, which override those. A Docker manifest
// list carries no annotations, so a build that asked for some fails with a message saying
// so. Pushing the same build twice pushes identical bytes. `registry_options` apply to every
// registry (insecure registries; the coordinator's metrics observe the requests there).
Result<PushedIndex> MergeAndPushIndex(const BuildRecord& build,
                                      const RegistryOptions& registry_options = {});

}  // namespace manifold
