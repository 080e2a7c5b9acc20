// Platform: the OCI (os, architecture, variant) triple that names what an image runs on.
//
// Users, agents and image configs spell platforms many ways ("x86_64", "aarch64",
// "arm64/v8", "armhf"); ParsePlatform normalises them to the spelling containerd and
// buildx use, so that two spellings of one platform compare equal. Plain values.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace manifold {

struct Platform {
  std::string os;            // "linux"
  std::string architecture;  // GOARCH spelling: "amd64", "arm64", "arm", "386", ...
  std::string variant;       // "" or "v7", "v6", "v8" (arm64 v8 is normalised away)

  // "linux/amd64", "linux/arm/v7".
  std::string ToString() const;
  bool operator==(const Platform&) const = default;
  auto operator<=>(const Platform&) const = default;
};

// Parses "os/arch[/variant]" and normalises it: x86_64/x86-64 -> amd64, aarch64 -> arm64,
// arm64/v8 -> arm64, armhf -> arm/v7, armel -> arm/v6, arm -> arm/v7, i386/i686 -> 386;
// lowercased. Rejects empty parts, unknown os or architecture, and extra parts with a
// message that quotes the input and gives an example of a valid one.
Result<Platform> ParsePlatform(std::string_view text);

// Parses "linux/amd64,linux/arm64": comma-separated, spaces trimmed, duplicates (after
// normalisation) removed keeping the first, order kept. Rejects an empty list.
Result<std::vector<Platform>> ParsePlatformList(std::string_view text);

// Architecture from `uname -m` ("x86_64", "aarch64", "armv7l", ...) in GOARCH spelling,
// or an error for one manifold does not know.
Result<Platform> PlatformFromMachine(std::string_view machine);

// The platform of the running host (linux + uname -m).
Result<Platform> HostPlatform();

// The name of the binfmt_misc entry that runs this platform's binaries under QEMU,
// e.g. "qemu-aarch64" for linux/arm64, "qemu-arm" for linux/arm/v7, "" if none is known.
std::string QemuBinfmtName(const Platform& platform);

// A platform an agent builds for, and whether it builds it natively or under emulation.
struct PlatformOffer {
  Platform platform;
  bool emulated = false;
  bool operator==(const PlatformOffer&) const = default;
};

}  // namespace manifold
