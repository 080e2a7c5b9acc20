#include "agent/host_platforms.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/temp_dir.h"

namespace manifold {
namespace {

Platform P(const char* text) { return *ParsePlatform(text); }

void WriteHandler(const std::string& dir, const std::string& name, const std::string& state) {
  std::ofstream(dir + "/" + name) << state << "\ninterpreter /usr/libexec/qemu-binfmt/x\n";
}

TEST(HostPlatformsTest, DefaultIsTheHostNatively) {
  auto offers = ResolvePlatformOffers({}, P("linux/amd64"), "/nonexistent");
  ASSERT_TRUE(offers.ok());
  EXPECT_EQ(*offers, (std::vector<PlatformOffer>{{P("linux/amd64"), false}}));
}

TEST(HostPlatformsTest, ForeignPlatformNeedsAnEnabledHandler) {
  test::TempDir dir;
  auto missing = ResolvePlatformOffers({P("linux/arm64")}, P("linux/amd64"), dir.path());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("qemu-aarch64"), std::string::npos);

  WriteHandler(dir.path(), "qemu-aarch64", "disabled");
  EXPECT_FALSE(ResolvePlatformOffers({P("linux/arm64")}, P("linux/amd64"), dir.path()).ok());

  WriteHandler(dir.path(), "qemu-aarch64", "enabled");
  auto offers =
      ResolvePlatformOffers({P("linux/amd64"), P("linux/arm64")}, P("linux/amd64"), dir.path());
  ASSERT_TRUE(offers.ok()) << offers.status().message();
  EXPECT_EQ(*offers,
            (std::vector<PlatformOffer>{{P("linux/amd64"), false}, {P("linux/arm64"), true}}));
}

TEST(HostPlatformsTest, NativeOnArm64Host) {
  auto offers = ResolvePlatformOffers({P("linux/arm64")}, P("linux/arm64"), "/nonexistent");
  ASSERT_TRUE(offers.ok());
  EXPECT_FALSE((*offers)[0].emulated);
}

}  // namespace
}  // namespace manifold
