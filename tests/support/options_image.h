// The options Dockerfile and the check of what it builds: a multi-stage Dockerfile whose
// image shows, for each platform, that a farm build's --target and --build-arg and the
// automatic TARGETARCH/TARGETPLATFORM args took effect, that COPY --from carried one
// stage's files into the next, and where the RUN step really ran. The farm tests of every
// backend build it and check it the same way, so each backend is held to the same result.
// Plain functions; thread-safe as read_image.h is.
#pragma once

#include <map>
#include <string>

namespace manifold::test {

// The "build" stage records TARGETARCH, TARGETPLATFORM, GREETING (default "unset") and
// `uname -m` under /out; "final" takes only that record (COPY --from) to
// /etc/manifold-out and is labelled stage=final arch=$TARGETARCH; "broken" after it fails
// (exit 7), so it must be built with --target final.
extern const char* const kOptionsDockerfile;

// Expects (gtest) that the image at `reference` ("HOST:PORT/REPO@DIGEST") is
// kOptionsDockerfile built with --target final and --build-arg GREETING=`greeting` for
// linux/`arch` (amd64 or arm64), its RUN step on that architecture (or QEMU's emulation
// of it), and that its config also carries `labels`.
void ExpectOptionsImage(const std::string& reference, const std::string& arch,
                        const std::string& greeting,
                        const std::map<std::string, std::string>& labels);

}  // namespace manifold::test
