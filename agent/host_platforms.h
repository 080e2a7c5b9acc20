// Which platforms an agent may offer, and whether natively or under emulation.
//
// An agent serves its host's platform natively. It may offer another platform only when
// the host can actually run that platform's binaries through a registered QEMU binfmt
// handler, and then it says so (emulated), so the coordinator and the user know the
// build was not native. Pure functions over a binfmt_misc directory; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "common/messages.h"
#include "common/platform.h"
#include "common/status.h"

namespace manifold {

// Whether binfmt_dir/<handler> exists and is enabled.
bool BinfmtHandlerEnabled(const std::string& binfmt_dir, const std::string& handler);

// Resolves the platforms asked for (empty: just the host's) into offers. A platform other
// than the host's needs its QEMU handler enabled in binfmt_dir; otherwise the error says
// which handler is missing and how to register it.
Result<std::vector<PlatformOffer>> ResolvePlatformOffers(
    const std::vector<Platform>& requested, const Platform& host,
    const std::string& binfmt_dir = "/proc/sys/fs/binfmt_misc");

}  // namespace manifold
