#include "agent/held_caches.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

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

TEST(HeldCachesTest, AJobAwaitsTheLoadOfItsCacheOnlyWhileItIsUnderWay) {
  using namespace std::chrono_literals;
  HeldCaches held;
  const std::string ref = "registry.test/cache/app/linux-arm64:latest";
  held.BeginLoading(ref);
  std::thread warm_start([&] {
    std::this_thread::sleep_for(50ms);
    held.Note(ref, {"sha256:a"});
    held.EndLoading(ref);
  });
  held.AwaitLoaded(ref, 60s);  // returns at EndLoading, bounded by the timeout
  EXPECT_TRUE(held.Holds(ref, {"sha256:a"})) << "returned before the load ended";
  warm_start.join();
  // Another ref, or one no longer loading, does not wait.
  held.BeginLoading("registry.test/cache/other/linux-arm64:latest");
  auto start = std::chrono::steady_clock::now();
  held.AwaitLoaded(ref, 60s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 30s);
}

}  // namespace
}  // namespace manifold
