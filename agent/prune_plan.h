// PrunePlan: which images of an agent's container storage go when it holds more than its
// cap (--cache-max-bytes) or leaves less free than its floor (--min-free-disk), and the
// parsing of those two settings.
//
// Least recently used first: an image's last use is when a job last built from it (its
// base images and its repository's cache image) or, for one no job has named yet, when
// the agent first saw it. Dangling images (no name and no child: a cache image whose name
// a newer build took, or the last step of a failed build) go before any named one, as
// nothing names them any more. Images a running job uses are never picked. The sizes are
// estimates (buildah's), so the caller measures again after removing and asks again.
// Pure functions on plain values.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace manifold {

struct StoredImage {
  std::string id;
  std::vector<std::string> names;  // empty: dangling
  uint64_t bytes = 0;              // an estimate of what removing it frees
  int64_t last_used = 0;           // any clock; larger is later
};

struct DiskGoal {
  uint64_t max_bytes = 0;       // the storage's cap; 0: no cap
  uint64_t min_free_bytes = 0;  // the free-space floor of its file system; 0: no floor
};

// Whether storage using `used_bytes`, on a file system with `free_bytes` free, breaks the
// goal.
bool OverGoal(const DiskGoal& goal, uint64_t used_bytes, uint64_t free_bytes);

// The ids to remove, in order, so that the estimated use is at most the cap and the free
// space at least the floor; every candidate not in `in_use` when even all are not enough,
// none when the goal is met.
std::vector<std::string> PickImagesToPrune(const std::vector<StoredImage>& images,
                                           const std::set<std::string>& in_use, uint64_t used_bytes,
                                           uint64_t free_bytes, const DiskGoal& goal);

// The free-space floor as given: a size ("5g") or a share of the file system ("10%").
struct DiskFloor {
  uint64_t bytes = 0;
  uint32_t percent = 0;
};
Result<DiskFloor> ParseDiskFloor(std::string_view text);
// The floor in bytes on a file system of `total_bytes`.
uint64_t FloorBytes(const DiskFloor& floor, uint64_t total_bytes);
// "5 GiB" or "10% of the disk": for messages.
std::string DescribeFloor(const DiskFloor& floor);

// A size as buildah prints it ("4.37 MB", "512 B", "1.2 GB": powers of 1000), in bytes.
Result<uint64_t> ParseDecimalSize(std::string_view text);

}  // namespace manifold
