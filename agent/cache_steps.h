// CacheStepCounter: how many steps of one build the builder's layer cache served, read
// from the build output as it streams to the log.
//
// Each backend says it in its own words. buildah (`bud --layers`) announces every
// instruction as "STEP 2/4: COPY ..." ("[1/2] STEP 2/4: ..." in a multi-stage build) and
// follows one it took from the cache with "--> Using cache <image id>". BuildKit's plain
// progress (`docker build --progress=plain`) names every instruction as a vertex,
// "#6 [2/3] RUN ..." ("[stage 2/3]" in a multi-stage build), possibly several times,
// and marks a cached one with "#6 CACHED". FROM is not a step here: it names a base image
// and has nothing to cache. A step without its cache line is a miss: it ran (or failed
// while running), so a --no-cache build or a backend without a layer cache counts misses
// only. Output arrives in chunks split anywhere; lines are put back together.
//
// Not thread-safe: one per build, fed from the thread that runs that build.
#pragma once

#include <set>
#include <string>
#include <string_view>

namespace manifold {

struct CacheSteps {
  int hits = 0;
  int misses = 0;
};

class CacheStepCounter {
 public:
  // Feeds a chunk of build output (any split, as the backend wrote it).
  void Add(std::string_view output);
  // The counts so far, including a last line that has no newline yet.
  CacheSteps Count() const;

 private:
  struct Tally {
    int buildah_steps = 0;          // STEP lines other than FROM
    int buildah_cached = 0;         // "--> Using cache" lines
    std::set<int> buildkit_steps;   // vertex numbers of steps other than FROM
    std::set<int> buildkit_cached;  // vertex numbers marked CACHED
  };
  static void Line(std::string_view line, Tally* tally);

  std::string partial_;  // the start of a line whose newline has not come yet
  Tally tally_;
};

}  // namespace manifold
