// DiskUsage: what a directory tree takes on disk, for the agent's disk cap
// (--cache-max-bytes), which counts the container storage and the cache mounts.
// A plain function; thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace manifold {

// Bytes on disk under `root`, on its file system only, each hard-linked file once; 0 when
// it does not exist.
uint64_t DiskUsage(const std::string& root);

}  // namespace manifold
