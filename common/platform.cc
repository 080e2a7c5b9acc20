#include "common/platform.h"

#include <sys/utsname.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

namespace manifold {
namespace {

constexpr std::string_view kExample = "e.g. \"linux/amd64\" or \"linux/arm/v7\"";

constexpr std::string_view kKnownOs[] = {"linux", "windows", "darwin", "freebsd"};

// One accepted architecture spelling: the GOARCH name it means, the variant it implies
// when none is written, and the variants that may be written after it. An alias such as
// "armhf" allows only the variant it implies, so "armhf/v6" is a contradiction.
struct ArchSpelling {
  std::string_view spelling;
  std::string_view architecture;
  std::string_view default_variant;
  std::string_view allowed_variants[3];
};

// arm64/v8 is listed so that it parses; Normalise drops the variant afterwards because
// every arm64 is v8 and containerd compares them equal.
constexpr ArchSpelling kArchitectures[] = {
    {"amd64", "amd64", "", {}},       {"x86_64", "amd64", "", {}},
    {"x86-64", "amd64", "", {}},      {"arm64", "arm64", "", {"v8"}},
    {"aarch64", "arm64", "", {"v8"}}, {"arm", "arm", "v7", {"v5", "v6", "v7"}},
    {"armhf", "arm", "v7", {"v7"}},   {"armel", "arm", "v6", {"v6"}},
    {"386", "386", "", {}},           {"i386", "386", "", {}},
    {"i686", "386", "", {}},          {"ppc64le", "ppc64le", "", {}},
    {"s390x", "s390x", "", {}},       {"riscv64", "riscv64", "", {}},
    {"mips64le", "mips64le", "", {}},
};

constexpr std::string_view kKnownArchitectures =
    "amd64, arm64, arm, 386, ppc64le, s390x, riscv64, mips64le";

// `uname -m` spellings. armv8l is a 32-bit userland on a 64-bit ARM kernel, which runs
// arm/v7 binaries.
struct MachineName {
  std::string_view machine;
  std::string_view architecture;
  std::string_view variant;
};

constexpr MachineName kMachines[] = {
    {"x86_64", "amd64", ""},    {"amd64", "amd64", ""},  {"aarch64", "arm64", ""},
    {"arm64", "arm64", ""},     {"armv8l", "arm", "v7"}, {"armv7l", "arm", "v7"},
    {"armv6l", "arm", "v6"},    {"i686", "386", ""},     {"i386", "386", ""},
    {"ppc64le", "ppc64le", ""}, {"s390x", "s390x", ""},  {"riscv64", "riscv64", ""},
};

constexpr std::string_view kWhitespace = " \t\r\n";

std::string_view Trim(std::string_view text) {
  size_t begin = text.find_first_not_of(kWhitespace);
  if (begin == std::string_view::npos) return {};
  size_t end = text.find_last_not_of(kWhitespace);
  return text.substr(begin, end - begin + 1);
}

std::string Lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string Quote(std::string_view text) { return "\"" + std::string(text) + "\""; }

Status InvalidPlatform(std::string_view input, const std::string& reason) {
  return Status::InvalidArgument("invalid platform " + Quote(input) + ": " + reason +
                                 "; expected os/arch[/variant], " + std::string(kExample));
}

const ArchSpelling* FindArchitecture(std::string_view spelling) {
  for (const ArchSpelling& arch : kArchitectures) {
    if (arch.spelling == spelling) return &arch;
  }
  return nullptr;
}

std::string AllowedVariants(const ArchSpelling& arch) {
  std::string list;
  for (std::string_view variant : arch.allowed_variants) {
    if (variant.empty()) continue;
    if (!list.empty()) list += ", ";
    list += variant;
  }
  return list;
}

}  // namespace

std::string Platform::ToString() const {
  std::string out = os + "/" + architecture;
  if (!variant.empty()) out += "/" + variant;
  return out;
}

Result<Platform> ParsePlatform(std::string_view text) {
  const std::string_view input = text;
  const std::string lowered = Lowercase(Trim(text));
  if (lowered.empty()) return InvalidPlatform(input, "it is empty");

  std::vector<std::string_view> parts;
  std::string_view rest = lowered;
  while (true) {
    size_t slash = rest.find('/');
    parts.push_back(rest.substr(0, slash));
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  if (parts.size() < 2) return InvalidPlatform(input, "it has no architecture");
  if (parts.size() > 3) return InvalidPlatform(input, "it has more than three parts");
  for (std::string_view part : parts) {
    if (part.empty()) return InvalidPlatform(input, "it has an empty part");
  }

  Platform platform;
  platform.os = std::string(parts[0]);
  if (std::find(std::begin(kKnownOs), std::end(kKnownOs), platform.os) == std::end(kKnownOs)) {
    return InvalidPlatform(
        input, "unknown os " + Quote(platform.os) + " (known: linux, windows, darwin, freebsd)");
  }

  const ArchSpelling* arch = FindArchitecture(parts[1]);
  if (arch == nullptr) {
    return InvalidPlatform(input, "unknown architecture " + Quote(parts[1]) +
                                      " (known: " + std::string(kKnownArchitectures) + ")");
  }
  platform.architecture = std::string(arch->architecture);
  platform.variant = std::string(arch->default_variant);
  if (parts.size() == 3) {
    std::string_view variant = parts[2];
    const auto* end = std::end(arch->allowed_variants);
    if (std::find(std::begin(arch->allowed_variants), end, variant) == end) {
      std::string allowed = AllowedVariants(*arch);
      return InvalidPlatform(
          input, "variant " + Quote(variant) + " is not valid for " + Quote(parts[1]) +
                     (allowed.empty() ? " (it takes no variant)" : " (valid: " + allowed + ")"));
    }
    platform.variant = std::string(variant);
  }
  if (platform.architecture == "arm64") platform.variant.clear();
  return platform;
}

Result<std::vector<Platform>> ParsePlatformList(std::string_view text) {
  std::vector<Platform> platforms;
  if (Trim(text).empty()) {
    return Status::InvalidArgument("no platforms given; expected a comma-separated list, " +
                                   std::string(kExample));
  }
  std::string_view rest = text;
  while (true) {
    size_t comma = rest.find(',');
    std::string_view item = Trim(rest.substr(0, comma));
    if (item.empty()) {
      return Status::InvalidArgument("platform list " + Quote(text) +
                                     " has an empty item; separate platforms with one comma, "
                                     "e.g. \"linux/amd64,linux/arm64\"");
    }
    Result<Platform> platform = ParsePlatform(item);
    if (!platform.ok()) return platform.status();
    if (std::find(platforms.begin(), platforms.end(), *platform) == platforms.end()) {
      platforms.push_back(std::move(platform).value());
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return platforms;
}

Result<Platform> PlatformFromMachine(std::string_view machine) {
  std::string_view trimmed = Trim(machine);
  for (const MachineName& known : kMachines) {
    if (known.machine == trimmed) {
      return Platform{"linux", std::string(known.architecture), std::string(known.variant)};
    }
  }
  std::string names;
  for (const MachineName& known : kMachines) {
    if (!names.empty()) names += ", ";
    names += known.machine;
  }
  return Status::InvalidArgument("unknown machine type " + Quote(machine) +
                                 " (from uname -m); manifold knows " + names);
}

Result<Platform> HostPlatform() {
  struct utsname name;
  if (uname(&name) != 0) {
    return Status::Internal(std::string("uname failed: ") + std::strerror(errno));
  }
  return PlatformFromMachine(name.machine);
}

std::string QemuBinfmtName(const Platform& platform) {
  // QEMU user-mode emulation runs Linux binaries only.
  if (platform.os != "linux") return "";
  static constexpr std::pair<std::string_view, std::string_view> kQemu[] = {
      {"amd64", "qemu-x86_64"},    {"arm64", "qemu-aarch64"},     {"arm", "qemu-arm"},
      {"386", "qemu-i386"},        {"ppc64le", "qemu-ppc64le"},   {"s390x", "qemu-s390x"},
      {"riscv64", "qemu-riscv64"}, {"mips64le", "qemu-mips64el"},
  };
  for (const auto& [architecture, name] : kQemu) {
    if (architecture == platform.architecture) return std::string(name);
  }
  return "";
}

}  // namespace manifold
