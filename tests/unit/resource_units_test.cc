#include "common/resource_units.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace manifold {
namespace {

TEST(ResourceUnitsTest, SizesInDockersForms) {
  constexpr uint64_t kKiB = 1024, kMiB = kKiB << 10, kGiB = kMiB << 10, kTiB = kGiB << 10;
  const std::pair<const char*, uint64_t> cases[] = {
      {"0", 0},
      {"1048576", kMiB},
      {"100b", 100},
      {"1k", kKiB},
      {"512m", 512 * kMiB},
      {"512M", 512 * kMiB},
      {"512mb", 512 * kMiB},
      {"512MiB", 512 * kMiB},
      {"2g", 2 * kGiB},
      {"1.5g", kGiB + kGiB / 2},
      {"0.5k", 512},
      {"1.0001k", 1024},  // a fraction of a byte is cut
      {"3t", 3 * kTiB},
      {"1p", kTiB << 10},
  };
  for (const auto& [text, bytes] : cases) {
    Result<uint64_t> parsed = ParseByteSize("--job-memory", text);
    ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.status().message();
    EXPECT_EQ(*parsed, bytes) << text;
  }
}

TEST(ResourceUnitsTest, BadSizesNameTheFlagAndShowAnExample) {
  for (const char* text : {"", "m", "-1", "1.", ".5g", "1.5.2g", "12x", "1gg", "1 g", "1kib2",
                           "0x10", "1e9", "99999999999999999999", "16777216p", "1.0000000001"}) {
    Result<uint64_t> parsed = ParseByteSize("--job-disk", text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.status().code(), Status::Code::kInvalidArgument);
    const std::string& message = parsed.status().message();
    EXPECT_EQ(message.rfind(std::string("--job-disk \"") + text + "\" is not a size", 0), 0u)
        << message;
  }
  EXPECT_EQ(ParseByteSize("--job-disk", "12x").status().message(),
            "--job-disk \"12x\" is not a size: write bytes or a number with k, m, g, t or p "
            "(binary units, as docker's), e.g. 512m or 1.5g");
}

TEST(ResourceUnitsTest, CpusAsDockersDecimal) {
  const std::pair<const char*, uint64_t> cases[] = {{"0", 0},      {"1", 1000},  {"1.5", 1500},
                                                    {"0.25", 250}, {"0.001", 1}, {"64", 64000}};
  for (const auto& [text, millis] : cases) {
    Result<uint64_t> parsed = ParseCpuMillis("--job-cpus", text);
    ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.status().message();
    EXPECT_EQ(*parsed, millis) << text;
  }
  for (const char* text : {"", "1.", "two", "1.5c", "-1", "0.0005", "1,5", "99999999999999999"}) {
    Result<uint64_t> parsed = ParseCpuMillis("--job-cpus", text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.status().message(),
              std::string("--job-cpus \"") + text +
                  "\" is not a number of CPUs: a decimal with at most three places, e.g. 2 "
                  "or 1.5")
        << text;
  }
}

}  // namespace
}  // namespace manifold
