// Registry cache options: buildx's --cache-from/--cache-to syntax
// ("type=registry,ref=REPO[:TAG][,mode=min|max]"), and the per-platform repository each
// platform's job reads and writes, so one platform never overwrites another's cache.
//
// A cache ref "R[:TAG]" holds each platform's cache at "R/OS-ARCH[-VARIANT]:TAG" (TAG is
// "latest" when none is given): "reg/cache/app:main" for linux/arm64 is
// "reg/cache/app/linux-arm64:main". A path component is valid in every registry's name
// grammar, where a platform in the tag would collide with the user's tag.
//
// Pure functions on values; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/platform.h"
#include "common/status.h"

namespace manifold {

struct CacheOption {
  std::string ref;   // "REGISTRY/REPOSITORY[:TAG]", no digest
  std::string mode;  // --cache-to: "min" or "max"; "" for --cache-from
};

// Parses one --cache-from (to = false) or --cache-to (to = true) value. A bare reference
// ("reg/cache/app") is short for type=registry,ref=...; the mode defaults to "min" as in
// buildx. Other cache types (local, gha, inline, s3...) and unknown keys are errors that
// name what is supported.
Result<CacheOption> ParseCacheOption(std::string_view text, bool to);

// A cache ref alone: a reference with a registry host, an optional tag and no digest.
Status ValidateCacheRef(std::string_view ref);

// The reference of `platform`'s cache under `ref` (see above). `ref` must be valid.
std::string PlatformCacheRef(std::string_view ref, const Platform& platform);

}  // namespace manifold
