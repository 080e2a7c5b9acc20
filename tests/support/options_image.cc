#include "tests/support/options_image.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/support/read_image.h"

namespace manifold::test {

const char* const kOptionsDockerfile = R"(FROM busybox AS build
ARG TARGETARCH
ARG TARGETPLATFORM
ARG GREETING=unset
RUN mkdir /out && echo "$TARGETARCH" > /out/targetarch \
 && echo "$TARGETPLATFORM" > /out/targetplatform \
 && echo "$GREETING" > /out/greeting && uname -m > /out/machine

FROM busybox AS final
ARG TARGETARCH
COPY --from=build /out /etc/manifold-out
LABEL stage=final arch=$TARGETARCH

FROM final AS broken
RUN exit 7
)";

void ExpectOptionsImage(const std::string& reference, const std::string& arch,
                        const std::string& greeting,
                        const std::map<std::string, std::string>& labels) {
  SCOPED_TRACE("linux/" + arch + " image " + reference);
  const std::map<std::string, std::string> machine = {{"amd64", "x86_64"}, {"arm64", "aarch64"}};
  ASSERT_TRUE(machine.count(arch)) << "no uname -m known for " << arch;

  nlohmann::json config = ImageConfig(reference);
  EXPECT_EQ(config.value("architecture", ""), arch) << config.dump();
  EXPECT_EQ(config.value("os", ""), "linux");
  const nlohmann::json& image_labels = config["config"]["Labels"];
  for (const auto& [key, value] : labels) {
    EXPECT_EQ(image_labels.value(key, ""), value) << config.dump();
  }
  EXPECT_EQ(image_labels.value("stage", ""), "final");  // --target: not "broken", which exits 7
  EXPECT_EQ(image_labels.value("arch", ""), arch);      // ARG TARGETARCH in the final stage

  // COPY --from brought the build stage's record, made on (or emulating) the platform.
  EXPECT_EQ(FileInImage(reference, "etc/manifold-out/targetarch"), arch + "\n");
  EXPECT_EQ(FileInImage(reference, "etc/manifold-out/targetplatform"), "linux/" + arch + "\n");
  EXPECT_EQ(FileInImage(reference, "etc/manifold-out/greeting"), greeting + "\n");
  EXPECT_EQ(FileInImage(reference, "etc/manifold-out/machine"), machine.at(arch) + "\n");
}

}  // namespace manifold::test
