// Fuzzes the agent-protocol decoders with frames as a hostile peer could send them.
// Beyond "no crash, no sanitizer report", a frame that decodes must survive a round trip:
// encoding the decoded values and decoding again gives the same values, so nothing the
// decoder accepts is something the encoder cannot say (or says differently).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "common/wire.h"

namespace {

// Small limits reach the limit checks with small inputs; the defaults are fuzzed too.
const manifold::WireLimits kTight{4096, 512, 4};

template <typename Decode, typename Encode>
void CheckRoundTrip(std::string_view frame, Decode decode, Encode encode) {
  for (const manifold::WireLimits& limits : {manifold::WireLimits{}, kTight}) {
    auto decoded = decode(frame, limits);
    if (!decoded.ok()) continue;
    std::string again = encode(*decoded);
    auto redecoded = decode(again, manifold::WireLimits{});
    if (!redecoded.ok() || !(*redecoded == *decoded)) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The first byte picks an alignment, since frames from TCP arrive at any address.
  if (size == 0) return 0;
  size_t shift = data[0] % 8;
  std::string buffer(shift, '\0');
  buffer.append(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string_view frame = std::string_view(buffer).substr(shift);
  CheckRoundTrip(frame, manifold::DecodeAgentMessage, manifold::EncodeAgentMessage);
  CheckRoundTrip(frame, manifold::DecodeCoordinatorMessage, manifold::EncodeCoordinatorMessage);
  return 0;
}
