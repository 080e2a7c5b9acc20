#include "common/registry_cache.h"

#include <algorithm>

#include "common/reference.h"

namespace manifold {
namespace {

const char kSupported[] = "manifold supports type=registry,ref=REPO[:TAG][,mode=min|max]";

}  // namespace

Status ValidateCacheRef(std::string_view ref) {
  Result<Reference> parsed = ParseReference(ref);
  if (!parsed.ok()) return parsed.status();
  if (!parsed->digest.empty()) {
    return Status::InvalidArgument("cache ref \"" + std::string(ref) +
                                   "\" names a digest; give a repository, with a tag or not");
  }
  return Status::Ok();
}

Result<CacheOption> ParseCacheOption(std::string_view text, bool to) {
  const std::string flag = to ? "--cache-to" : "--cache-from";
  CacheOption option;
  if (text.find('=') == std::string_view::npos) {
    option.ref = std::string(text);
  } else {
    std::string type;
    for (size_t start = 0; start <= text.size();) {
      size_t comma = std::min(text.find(',', start), text.size());
      std::string_view field = text.substr(start, comma - start);
      start = comma + 1;
      size_t eq = field.find('=');
      std::string key(field.substr(0, eq));
      std::string value = eq == std::string_view::npos ? "" : std::string(field.substr(eq + 1));
      if (key == "type") {
        type = value;
      } else if (key == "ref") {
        option.ref = value;
      } else if (key == "mode" && to) {
        if (value != "min" && value != "max") {
          return Status::InvalidArgument(flag + ": mode \"" + value + "\" is not min or max; " +
                                         kSupported);
        }
        option.mode = value;
      } else {
        return Status::InvalidArgument(flag + ": unknown key \"" + key + "\" in \"" +
                                       std::string(text) + "\"; " + kSupported);
      }
    }
    if (type != "registry") {
      return Status::InvalidArgument(flag + ": cache type \"" + type + "\" is not supported; " +
                                     kSupported);
    }
  }
  if (option.ref.empty()) {
    return Status::InvalidArgument(flag + ": \"" + std::string(text) + "\" has no ref; " +
                                   kSupported);
  }
  if (Status s = ValidateCacheRef(option.ref); !s.ok()) return s.WithContext(flag);
  if (to && option.mode.empty()) option.mode = "min";
  return option;
}

std::string PlatformCacheRef(std::string_view ref, const Platform& platform) {
  Result<Reference> parsed = ParseReference(ref);
  if (!parsed.ok()) return std::string(ref);
  std::string component = platform.os + "-" + platform.architecture;
  if (!platform.variant.empty()) component += "-" + platform.variant;
  // Platform parts are lowercase [a-z0-9] (validated), so the component is a valid name.
  return parsed->Name() + "/" + component + ":" + parsed->tag;
}

}  // namespace manifold
