// Fuzzes the image-reference parser. A reference that parses must print as a reference
// that parses to the same parts (ToString and ParseReference agree), and its name must
// parse too: the coordinator stores ToString() and the agent parses it again.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/reference.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  manifold::Result<manifold::Reference> ref = manifold::ParseReference(text);
  if (!ref.ok()) {
    if (ref.status().message().empty()) std::abort();  // every refusal says why
    return 0;
  }
  manifold::Result<manifold::Reference> again = manifold::ParseReference(ref->ToString());
  if (!again.ok() || !(*again == *ref)) std::abort();
  if (!manifold::ParseReference(ref->Name()).ok()) std::abort();
  manifold::IsLoopbackRegistry(ref->registry);
  return 0;
}
