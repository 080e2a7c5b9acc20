// Fuzzes the platform parsers. Normalisation must be idempotent: a parsed platform prints
// as text that parses to the same platform, since agents, the API and image configs all
// compare platforms after parsing them.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/platform.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  manifold::Result<manifold::Platform> platform = manifold::ParsePlatform(text);
  if (platform.ok()) {
    manifold::Result<manifold::Platform> again = manifold::ParsePlatform(platform->ToString());
    if (!again.ok() || !(*again == *platform)) std::abort();
    manifold::QemuBinfmtName(*platform);
  }
  manifold::Result<std::vector<manifold::Platform>> list = manifold::ParsePlatformList(text);
  if (list.ok()) {
    if (list->empty()) std::abort();  // an empty list is refused, never returned
    for (const manifold::Platform& p : *list) {
      if (!manifold::ParsePlatform(p.ToString()).ok()) std::abort();
    }
  }
  static_cast<void>(manifold::PlatformFromMachine(text));  // any answer; no crash
  return 0;
}
