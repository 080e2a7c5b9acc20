// The registry cache in buildah's layer cache.
//
// Spike (buildah 1.28.2, the Debian version): `bud --layers --cache-from REPO` misses every
// step after an ARG or COPY when the store is empty (containers/buildah#4326, fixed in
// 1.29.1): on a fresh storage root a Dockerfile with `ARG TARGETARCH` and `COPY . .` before
// its expensive RUN ran that RUN again, though `--cache-to` had pushed every step. But the
// step images themselves carry what `--layers` matches on (each layer's parent chain, its
// history and the COPY content digests), and a layer pulled into a store gets an id derived
// from its diff id chain, the same on every agent. So `buildah pull` of the step images
// (`buildah push ID oci:DIR:REF` on the agent that built them, through the registry, then
// `buildah pull oci:DIR:REF` on the fresh one) makes plain `bud --layers` say "--> Using
// cache" for every step, ARG and COPY included. The agent does that itself instead of
// using buildah's --cache-from/--cache-to.
//
// StepImages reads which image each step left from bud's output; ImportCacheImages and
// ExportCacheImages move them between the store and an OCI layout. Not thread-safe
// (StepImages is fed by one build); the functions are as thread-safe as the runner.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/command_runner.h"
#include "common/status.h"

namespace manifold {

// The images a `buildah bud --layers` made or reused, one per step, from its output:
// each step ends with "--> <image id>" ("--> Using cache <id>" comes before it on a hit);
// a multi-stage build starts each stage with "[K/N] STEP 1/M: FROM ...".
class StepImages {
 public:
  void Add(std::string_view output);
  // In build order: every stage's (all_stages) or the last stage's.
  std::vector<std::string> Ids(bool all_stages) const;

 private:
  void Line(std::string_view line);

  std::string partial_;
  std::vector<std::vector<std::string>> stages_{1};
};

// Loads the images of the layout at `dir` (ref names in index.json order) into buildah's
// store, so `bud --layers` finds them, the last one named `cache_name` (when set), so the
// agent's image store holds it for the job. Each pull names its image after the layout's
// directory, which must be a valid lowercase image name: a layout directory named
// `cache_name` saves renaming the last image (two buildah processes); any other name must
// be unique to the job, and the import renames. A pull that fails ends the import with a
// warning: the build goes on with what was loaded. `cancel` (may be null) stops the pull
// under way and the import with it.
void ImportCacheImages(CommandRunner& runner, const std::string& buildah_path,
                       const std::string& dir, const std::string& cache_name,
                       const std::function<void(std::string_view)>& on_output,
                       const std::atomic<bool>* cancel);

// Writes the images `ids` to a new layout at `dir` under ref names cache-1, cache-2...
// Ok, or the error of the push that failed, with `dir` removed (no partial cache).
Status ExportCacheImages(CommandRunner& runner, const std::string& buildah_path,
                         const std::vector<std::string>& ids, const std::string& dir,
                         const std::function<void(std::string_view)>& on_output);

}  // namespace manifold
