// DockerfileBases: the images a Dockerfile builds from, named as container storage names
// them, so that the agent keeps them while a job builds from them (ImageStore).
//
// They are the images of its FROM lines and of COPY --from, other than its own stages
// and scratch, after the build args and the ARGs declared before the first FROM are put
// in ("FROM $BASE"). A reference still holding a variable after that, or not a valid
// reference, is left out: such a job's images are kept only by buildah's own locks and
// the agent's rule that images it first saw during a job are not pruned until it ends.
// Pure functions.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace manifold {

// Fully qualified references, e.g. "docker.io/library/busybox:latest", without repeats.
std::vector<std::string> DockerfileBases(std::string_view dockerfile,
                                         const std::map<std::string, std::string>& build_args);

}  // namespace manifold
