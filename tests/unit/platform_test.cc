#include "common/platform.h"

#include <gtest/gtest.h>

namespace manifold {
namespace {

Platform Parsed(std::string_view text) {
  Result<Platform> platform = ParsePlatform(text);
  EXPECT_TRUE(platform.ok()) << text << ": " << platform.status().message();
  return platform.ok() ? *platform : Platform{};
}

TEST(PlatformTest, CanonicalSpellingsParse) {
  EXPECT_EQ(Parsed("linux/amd64"), (Platform{"linux", "amd64", ""}));
  EXPECT_EQ(Parsed("linux/arm64"), (Platform{"linux", "arm64", ""}));
  EXPECT_EQ(Parsed("linux/arm/v6"), (Platform{"linux", "arm", "v6"}));
  EXPECT_EQ(Parsed("linux/arm/v5"), (Platform{"linux", "arm", "v5"}));
  EXPECT_EQ(Parsed("windows/amd64"), (Platform{"windows", "amd64", ""}));
  EXPECT_EQ(Parsed("linux/s390x"), (Platform{"linux", "s390x", ""}));
}

TEST(PlatformTest, AliasesNormalise) {
  EXPECT_EQ(Parsed("linux/x86_64"), Parsed("linux/amd64"));
  EXPECT_EQ(Parsed("linux/x86-64"), Parsed("linux/amd64"));
  EXPECT_EQ(Parsed("linux/aarch64"), Parsed("linux/arm64"));
  EXPECT_EQ(Parsed("linux/arm64/v8"), Parsed("linux/arm64"));
  EXPECT_EQ(Parsed("linux/aarch64/v8"), Parsed("linux/arm64"));
  EXPECT_EQ(Parsed("linux/armhf"), (Platform{"linux", "arm", "v7"}));
  EXPECT_EQ(Parsed("linux/armel"), (Platform{"linux", "arm", "v6"}));
  EXPECT_EQ(Parsed("linux/arm"), (Platform{"linux", "arm", "v7"}));
  EXPECT_EQ(Parsed("linux/i386"), (Platform{"linux", "386", ""}));
  EXPECT_EQ(Parsed("linux/i686"), (Platform{"linux", "386", ""}));
}

TEST(PlatformTest, CaseAndSurroundingSpaceIgnored) {
  EXPECT_EQ(Parsed("Linux/AMD64"), Parsed("linux/amd64"));
  EXPECT_EQ(Parsed("LINUX/ARM/V7"), (Platform{"linux", "arm", "v7"}));
  EXPECT_EQ(Parsed("  linux/arm64 "), Parsed("linux/arm64"));
}

TEST(PlatformTest, ToStringUsesCanonicalSpelling) {
  EXPECT_EQ(Parsed("linux/x86_64").ToString(), "linux/amd64");
  EXPECT_EQ(Parsed("linux/armhf").ToString(), "linux/arm/v7");
  EXPECT_EQ(Parsed("linux/arm64/v8").ToString(), "linux/arm64");
}

TEST(PlatformTest, BadInputsRejectedWithQuotedInput) {
  for (std::string_view bad : {"", "linux", "linux/", "/amd64", "linux/amd64/v9/x", "linux/sparc",
                               "plan9/amd64", "linux/arm/v9", "linux/amd64/v2", "linux/arm64/v7",
                               "linux/armhf/v6", "linux//amd64", "linux/amd64/", "linux amd64"}) {
    Result<Platform> platform = ParsePlatform(bad);
    ASSERT_FALSE(platform.ok()) << "accepted " << bad;
    EXPECT_EQ(platform.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(platform.status().message().find("\"" + std::string(bad) + "\""), std::string::npos)
        << platform.status().message();
    EXPECT_NE(platform.status().message().find("linux/amd64"), std::string::npos)
        << "no example in: " << platform.status().message();
  }
}

TEST(PlatformTest, ErrorsSayWhatIsWrong) {
  EXPECT_NE(ParsePlatform("linux/sparc").status().message().find("unknown architecture"),
            std::string::npos);
  EXPECT_NE(ParsePlatform("plan9/amd64").status().message().find("unknown os"), std::string::npos);
  EXPECT_NE(ParsePlatform("linux/arm/v9").status().message().find("v5, v6, v7"), std::string::npos);
}

TEST(PlatformListTest, SplitsTrimsAndKeepsOrder) {
  Result<std::vector<Platform>> list = ParsePlatformList(" linux/arm64 , linux/amd64,linux/arm/v6");
  ASSERT_TRUE(list.ok()) << list.status().message();
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].ToString(), "linux/arm64");
  EXPECT_EQ((*list)[1].ToString(), "linux/amd64");
  EXPECT_EQ((*list)[2].ToString(), "linux/arm/v6");
}

TEST(PlatformListTest, DuplicatesAfterNormalisationRemoved) {
  Result<std::vector<Platform>> list =
      ParsePlatformList("linux/amd64,linux/x86_64,linux/aarch64,linux/arm64/v8,linux/AMD64");
  ASSERT_TRUE(list.ok()) << list.status().message();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].ToString(), "linux/amd64");
  EXPECT_EQ((*list)[1].ToString(), "linux/arm64");
}

TEST(PlatformListTest, EmptyListsAndItemsRejected) {
  EXPECT_FALSE(ParsePlatformList("").ok());
  EXPECT_FALSE(ParsePlatformList("   ").ok());
  EXPECT_FALSE(ParsePlatformList("linux/amd64,").ok());
  EXPECT_FALSE(ParsePlatformList("linux/amd64,,linux/arm64").ok());
  Result<std::vector<Platform>> bad = ParsePlatformList("linux/amd64,linux/sparc");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("\"linux/sparc\""), std::string::npos);
}

TEST(PlatformFromMachineTest, KnownMachines) {
  struct Case {
    const char* machine;
    const char* platform;
  } cases[] = {
      {"x86_64", "linux/amd64"},    {"aarch64", "linux/arm64"},   {"arm64", "linux/arm64"},
      {"armv7l", "linux/arm/v7"},   {"armv6l", "linux/arm/v6"},   {"i686", "linux/386"},
      {"i386", "linux/386"},        {"ppc64le", "linux/ppc64le"}, {"s390x", "linux/s390x"},
      {"riscv64", "linux/riscv64"}, {"x86_64\n", "linux/amd64"},
  };
  for (const Case& c : cases) {
    Result<Platform> platform = PlatformFromMachine(c.machine);
    ASSERT_TRUE(platform.ok()) << c.machine << ": " << platform.status().message();
    EXPECT_EQ(platform->ToString(), c.platform);
  }
}

TEST(PlatformFromMachineTest, UnknownMachineRejected) {
  Result<Platform> platform = PlatformFromMachine("sparc64");
  ASSERT_FALSE(platform.ok());
  EXPECT_NE(platform.status().message().find("\"sparc64\""), std::string::npos);
  EXPECT_FALSE(PlatformFromMachine("").ok());
}

TEST(PlatformFromMachineTest, HostPlatformIsKnownLinux) {
  Result<Platform> host = HostPlatform();
  ASSERT_TRUE(host.ok()) << host.status().message();
  EXPECT_EQ(host->os, "linux");
  // Whatever the host is, its platform must survive a round trip through the parser.
  Result<Platform> reparsed = ParsePlatform(host->ToString());
  ASSERT_TRUE(reparsed.ok()) << reparsed.status().message();
  EXPECT_EQ(*reparsed, *host);
}

TEST(QemuBinfmtNameTest, KnownArchitectures) {
  EXPECT_EQ(QemuBinfmtName(Parsed("linux/amd64")), "qemu-x86_64");
  EXPECT_EQ(QemuBinfmtName(Parsed("linux/arm64")), "qemu-aarch64");
  EXPECT_EQ(QemuBinfmtName(Parsed("linux/arm/v7")), "qemu-arm");
  EXPECT_EQ(QemuBinfmtName(Parsed("linux/arm/v6")), "qemu-arm");
  EXPECT_EQ(QemuBinfmtName(Parsed("linux/386")), "qemu-i386");
  EXPECT_EQ(QemuBinfmtName(Parsed("linux/ppc64le")), "qemu-ppc64le");
  EXPECT_EQ(QemuBinfmtName(Parsed("linux/s390x")), "qemu-s390x");
  EXPECT_EQ(QemuBinfmtName(Parsed("linux/riscv64")), "qemu-riscv64");
  EXPECT_EQ(QemuBinfmtName(Parsed("windows/amd64")), "");
  EXPECT_EQ(QemuBinfmtName(Platform{"linux", "sparc", ""}), "");
}

}  // namespace
}  // namespace manifold
