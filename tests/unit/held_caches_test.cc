#include "agent/held_caches.h"

#include <gtest/gtest.h>

namespace manifold {
namespace {

TEST(HeldCachesTest, AReferenceIsHeldOnlyWhenEveryImageItListsIsNoted) {
  HeldCaches held;
  const std::string ref = "registry.test/cache/app/linux-arm64:latest";
  EXPECT_FALSE(held.Holds(ref, {"sha256:a"})) << "nothing noted yet";
  held.Note(ref, {"sha256:a", "sha256:b"});
  EXPECT_TRUE(held.Holds(ref, {"sha256:a", "sha256:b"}));
  EXPECT_TRUE(held.Holds(ref, {"sha256:b"}));
  EXPECT_FALSE(held.Holds(ref, {"sha256:a", "sha256:c"})) << "another agent pushed a newer step";
  EXPECT_FALSE(held.Holds(ref, {})) << "an empty cache is not a cache";
  EXPECT_FALSE(held.Holds("registry.test/cache/app/linux-amd64:latest", {"sha256:a"}))
      << "another platform's cache";
  // A newer note replaces the older one: its images are what the registry lists now.
  held.Note(ref, {"sha256:c"});
  EXPECT_FALSE(held.Holds(ref, {"sha256:a"}));
  EXPECT_TRUE(held.Holds(ref, {"sha256:c"}));
}

}  // namespace
}  // namespace manifold
