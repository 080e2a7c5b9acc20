// ResourceUnits: job limits as people write them on a command line, in docker's forms, so
// that `manifold build --job-memory 1.5g --job-cpus 0.5` means what `docker run --memory
// 1.5g --cpus 0.5` means. Shared by the CLI's and the agent's flags.
//
// Errors name the flag and give an example of what it takes. Plain functions; thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/status.h"

namespace manifold {

// A size in bytes: a decimal number ("512", "1.5") with an optional unit k, m, g, t or p,
// binary as docker's are (1k = 1024), in either case and optionally followed by "b" or
// "ib" ("512m", "512MiB", "2G", "1.5gb"); no unit means bytes. Fractions of a byte are cut.
Result<uint64_t> ParseByteSize(std::string_view flag, std::string_view text);

// A number of CPUs as a decimal ("2", "1.5", "0.25"), as docker's --cpus, in thousandths of
// a CPU (1.5 is 1500). A finer fraction than 0.001 is refused rather than rounded.
Result<uint64_t> ParseCpuMillis(std::string_view flag, std::string_view text);

}  // namespace manifold
