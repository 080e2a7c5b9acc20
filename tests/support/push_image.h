// PushTestImage: puts a test image (see test_image.h) into a registry with manifold's own
// client, for tests and benchmarks whose subject is what happens to it afterwards (merging,
// copying, reading back). Thread-safe as RegistryClient is.
#pragma once

#include <string>

#include "common/registry.h"
#include "common/status.h"
#include "tests/support/test_image.h"

namespace manifold::test {

// Pushes the image's config and layers, then its manifest under `reference` (a tag or
// its digest).
Status PushTestImage(const RegistryClient& client, const std::string& repository,
                     const std::string& reference, const TestImage& image);

}  // namespace manifold::test
