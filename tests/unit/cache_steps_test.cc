#include "agent/cache_steps.h"

#include <gtest/gtest.h>

#include <string>

namespace manifold {
namespace {

CacheSteps CountAll(const std::string& output) {
  CacheStepCounter counter;
  counter.Add(output);
  return counter.Count();
}

// What buildah 1.28 printed here for `bud --layers` of one Dockerfile, built twice.
const char kBuildahCold[] =
    "STEP 1/4: FROM scratch\n"
    "STEP 2/4: COPY busybox /bin/busybox\n"
    "--> 929b33d323a\n"
    "STEP 3/4: RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo built > /out.txt\"]\n"
    "--> 829b1cb44a5\n"
    "STEP 4/4: COPY hello.txt /hello.txt\n"
    "COMMIT t1\n"
    "--> b4f24ef4b0e\n"
    "[Warning] one or more build args were not consumed: [TARGETARCH TARGETOS TARGETPLATFORM]\n"
    "Successfully tagged localhost/t1:latest\n"
    "b4f24ef4b0e236f73475ad70ea1aa9b52697ba7249ad0a107e208e28aca00b12\n";
const char kBuildahWarm[] =
    "STEP 1/4: FROM scratch\n"
    "STEP 2/4: COPY busybox /bin/busybox\n"
    "--> Using cache 929b33d323aff4541a07bb22a74b769f2d4dc7382a55aab82a6175a3e18f3a7f\n"
    "--> 929b33d323a\n"
    "STEP 3/4: RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo built > /out.txt\"]\n"
    "--> Using cache 829b1cb44a5f787e3dd6615d58832faff8b113b4c1408be3e6d29416ae184846\n"
    "--> 829b1cb44a5\n"
    "STEP 4/4: COPY hello.txt /hello.txt\n"
    "--> Using cache b4f24ef4b0e236f73475ad70ea1aa9b52697ba7249ad0a107e208e28aca00b12\n"
    "COMMIT t2\n"
    "--> b4f24ef4b0e\n"
    "Successfully tagged localhost/t2:latest\n"
    "b4f24ef4b0e236f73475ad70ea1aa9b52697ba7249ad0a107e208e28aca00b12\n";

TEST(CacheStepCounterTest, BuildahColdBuildMissesEveryStepButFrom) {
  CacheSteps steps = CountAll(kBuildahCold);
  EXPECT_EQ(steps.hits, 0);
  EXPECT_EQ(steps.misses, 3);
}

TEST(CacheStepCounterTest, BuildahRebuildHitsEveryStep) {
  CacheSteps steps = CountAll(kBuildahWarm);
  EXPECT_EQ(steps.hits, 3);
  EXPECT_EQ(steps.misses, 0);
}

// A multi-stage build after hello.txt changed: the first stage comes from the cache, the
// changed COPY runs; the second stage's FROM (the first stage's image) is no step.
TEST(CacheStepCounterTest, BuildahMultiStageCountsEachStage) {
  CacheSteps steps = CountAll(
      "[1/2] STEP 1/3: FROM scratch AS base\n"
      "[1/2] STEP 2/3: COPY busybox /bin/busybox\n"
      "--> Using cache 929b33d323aff4541a07bb22a74b769f2d4dc7382a55aab82a6175a3e18f3a7f\n"
      "--> 929b33d323a\n"
      "[1/2] STEP 3/3: RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo built > /out.txt\"]\n"
      "--> Using cache 829b1cb44a5f787e3dd6615d58832faff8b113b4c1408be3e6d29416ae184846\n"
      "--> 829b1cb44a5\n"
      "[2/2] STEP 1/2: FROM 829b1cb44a5f787e3dd6615d58832faff8b113b4c1408be3e6d29416ae184846\n"
      "[2/2] STEP 2/2: COPY hello.txt /hello.txt\n"
      "[2/2] COMMIT t3\n"
      "--> f27a7287d34\n");
  EXPECT_EQ(steps.hits, 2);
  EXPECT_EQ(steps.misses, 1);
}

// A step that fails ran without the cache: a miss.
TEST(CacheStepCounterTest, BuildahFailedStepIsAMiss) {
  CacheSteps steps = CountAll(
      "STEP 1/2: FROM scratch\n"
      "STEP 2/2: RUN false\n"
      "error running container: from /bin/sh: no such file or directory\n"
      "Error: building at STEP \"RUN false\": exit status 1\n");
  EXPECT_EQ(steps.hits, 0);
  EXPECT_EQ(steps.misses, 1);
}

// What `docker build --progress=plain` (the engine's BuildKit) printed here for a rebuild
// (tests/integration/docker_builder_test.cc builds it twice).
const char kBuildkitWarm[] =
    "#1 [internal] load build definition from cache-warm.Dockerfile\n"
    "#1 sha256:f82a8562cfe452f7d0a8fbce2e70d093cde09af9dc21910bc672c3b895634ae3\n"
    "#1 transferring dockerfile: 117B done\n"
    "#1 DONE 0.0s\n"
    "\n"
    "#3 [internal] load metadata for docker.io/library/busybox:latest\n"
    "#3 sha256:da853382a7535e068feae4d80bdd0ad2567df3d5cd484fd68f919294d091b053\n"
    "#3 DONE 0.0s\n"
    "\n"
    "#4 [1/3] FROM "
    "docker.io/library/"
    "busybox@sha256:4991c18d9be0a581f60bce4a3218cf810cab8a195e64af1321a2f933866ffd5f\n"
    "#4 sha256:cb1547377b1c648e359266d63171d2adfd09bb84bb1699ae3b26d56b98f34acb\n"
    "#4 DONE 0.0s\n"
    "\n"
    "#6 [2/3] COPY note.txt /note.txt\n"
    "#6 sha256:6a809b61b2ddd537a5078fb411d20313d600751954bd7aec14c725ed10aefd27\n"
    "#6 CACHED\n"
    "\n"
    "#7 [3/3] RUN cat /note.txt > /copied.txt\n"
    "#7 sha256:cda0680137fff57424218fe021fbe4d6b9d65d545be9807bbfcac0581450a11c\n"
    "#7 CACHED\n"
    "\n"
    "#8 exporting to image\n"
    "#8 sha256:e8c613e07b0b7ff33893b694f7759a10d42e180f2b4dc349fb57dc6b71dcab00\n"
    "#8 exporting layers done\n"
    "#8 DONE 0.0s\n";

TEST(CacheStepCounterTest, BuildkitRebuildHitsEveryStep) {
  CacheSteps steps = CountAll(kBuildkitWarm);
  EXPECT_EQ(steps.hits, 2);
  EXPECT_EQ(steps.misses, 0);
}

// Multi-stage headers name the stage ("[build 2/2]"); a vertex may be printed again when
// output interleaves; FROM, internal vertices and the export are no steps.
const char kBuildkit[] =
    "#0 building with \"default\" instance using docker driver\n"
    "\n"
    "#1 [internal] load build definition from Dockerfile.manifold\n"
    "#1 transferring dockerfile: 120B done\n"
    "#1 DONE 0.0s\n"
    "\n"
    "#2 [internal] load metadata for docker.io/library/busybox:latest\n"
    "#2 DONE 0.1s\n"
    "\n"
    "#3 [internal] load .dockerignore\n"
    "#3 transferring context: 2B done\n"
    "#3 DONE 0.0s\n"
    "\n"
    "#4 [build 1/2] FROM docker.io/library/busybox:latest@sha256:0123\n"
    "#4 CACHED\n"
    "\n"
    "#5 [internal] load build context\n"
    "#5 transferring context: 64B done\n"
    "#5 DONE 0.0s\n"
    "\n"
    "#6 [build 2/2] COPY hello.txt /hello.txt\n"
    "#6 CACHED\n"
    "\n"
    "#7 [stage-1 2/3] RUN echo hi\n"
    "#7 0.245 hi\n"
    "#7 DONE 0.3s\n"
    "\n"
    "#8 [stage-1 3/3] COPY --from=build /hello.txt /copied.txt\n"
    "#8 DONE 0.0s\n"
    "\n"
    "#7 [stage-1 2/3] RUN echo hi\n"
    "#9 exporting to image\n"
    "#9 exporting layers 0.1s done\n"
    "#9 DONE 0.1s\n";

TEST(CacheStepCounterTest, BuildkitCountsCachedVerticesOnce) {
  CacheSteps steps = CountAll(kBuildkit);
  EXPECT_EQ(steps.hits, 1);    // #6
  EXPECT_EQ(steps.misses, 2);  // #7 (printed twice), #8
}

TEST(CacheStepCounterTest, ChunksSplitAnywhereCountTheSame) {
  for (const std::string output :
       {std::string(kBuildahWarm), std::string(kBuildkitWarm), std::string(kBuildkit)}) {
    CacheSteps whole = CountAll(output);
    for (size_t size : {1u, 2u, 7u, 64u}) {
      CacheStepCounter counter;
      for (size_t at = 0; at < output.size(); at += size) counter.Add(output.substr(at, size));
      CacheSteps chunked = counter.Count();
      EXPECT_EQ(chunked.hits, whole.hits) << size;
      EXPECT_EQ(chunked.misses, whole.misses) << size;
    }
  }
}

TEST(CacheStepCounterTest, LastLineWithoutNewlineAndCrlfCount) {
  CacheStepCounter counter;
  counter.Add("STEP 1/2: FROM scratch\r\nSTEP 2/2: COPY a /a\r\n--> Using cache 929b33d3");
  CacheSteps steps = counter.Count();
  EXPECT_EQ(steps.hits, 1);
  EXPECT_EQ(steps.misses, 0);
}

// RUN output that only resembles these lines, very long lines and huge vertex numbers
// neither count nor throw.
TEST(CacheStepCounterTest, OtherOutputCountsNothing) {
  CacheSteps steps =
      CountAll("hello STEP 2/2: RUN x\n#99999999999 CACHED\n#99999999999 [1/2] RUN x\n" +
               std::string(100000, 'x') + "\n#12 0.1 #12 CACHED\nUsing cache 1234\n");
  EXPECT_EQ(steps.hits, 0);
  EXPECT_EQ(steps.misses, 0);
}

}  // namespace
}  // namespace manifold
