#include "agent/host_platforms.h"

#include <fstream>

namespace manifold {

bool BinfmtHandlerEnabled(const std::string& binfmt_dir, const std::string& handler) {
  if (handler.empty()) return false;
  std::ifstream in(binfmt_dir + "/" + handler);
  std::string first_line;
  return in && std::getline(in, first_line) && first_line == "enabled";
}

Result<std::vector<PlatformOffer>> ResolvePlatformOffers(const std::vector<Platform>& requested,
                                                         const Platform& host,
                                                         const std::string& binfmt_dir) {
  if (requested.empty()) return std::vector<PlatformOffer>{{host, false}};
  std::vector<PlatformOffer> offers;
  for (const Platform& platform : requested) {
    if (platform == host) {
      offers.push_back({platform, false});
      continue;
    }
    std::string handler = QemuBinfmtName(platform);
    if (!BinfmtHandlerEnabled(binfmt_dir, handler)) {
      return Status::FailedPrecondition(
          platform.ToString() + " is not native on this " + host.ToString() + " host and " +
          (handler.empty()
               ? std::string("manifold knows no QEMU handler for it")
               : "the QEMU binfmt handler " + handler + " is not enabled in " + binfmt_dir) +
          "; install qemu-user-static and binfmt-support (ops/binfmt.sh does it), or drop "
          "this platform from --platform");
    }
    offers.push_back({platform, true});
  }
  return offers;
}

}  // namespace manifold
