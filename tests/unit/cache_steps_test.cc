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

// docker build --progress=plain (BuildKit): vertices may be printed more than once, and
// FROM, internal vertices and the export are no steps.
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
  for (const std::string output : {std::string(kBuildahWarm), std::string(kBuildkit)}) {
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
