// Merger: turns a build whose every platform succeeded into one pushed image index.
//
// The index is made from the descriptors the agents reported (media type, digest, size)
// and the platform each job was built for; nothing is downloaded. Each child is checked
// with one HEAD in the repository the index goes to (the requests for all children at
// once): it must exist there with the reported media type and size, so no tag ever names
// an index with a missing or misdescribed child. That the image really is for its
// platform is the agent's check, made on its image config before it pushes
// (agent/job_runner.cc). A merge runs on one of the coordinator's merge threads, never on its
// agent loop; it keeps one registry client (with its open connections and tokens) per
// registry across merges, and drops a registry's client after a failed merge, so a retry
// reads docker's config.json and certs.d afresh. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "common/registry.h"
#include "common/status.h"
#include "coordinator/build.h"

namespace manifold {

struct PushedIndex {
  std::string digest;
  std::string media_type;
};

// Builds the index (OCI index for OCI children, Docker manifest list for Docker children)
// from the build's succeeded jobs, checks every child exists in each tag's repository,
// and PUTs the index under every tag. Before the first tag moves, each repository proves
// it takes pushes (an upload session opened and cancelled) and holds every child; a tag
// that still fails makes an error saying which tags moved and which did not. An index
// refused for a child the registry does not find is put again after the children are
// checked. An OCI index is annotated with
// org.opencontainers.image.created (when merging began), .source and .revision from the
// build, then the build's own index annotations, which override those. A Docker manifest
// list carries no annotations, so a build that asked for some fails with a message saying
// so. Pushing the same build twice pushes identical bytes.
class Merger {
 public:
  // `registry_options` apply to every registry client (insecure registries; the
  // coordinator's metrics observe the requests through on_request). `leading`, if set, is
  // asked before every tag is moved: the registry cannot be fenced like the database, so
  // a coordinator whose leader lease lapsed (LoopOptions::leading) moves no tag, and the
  // merge fails retryably with the tags it moved so far named.
  explicit Merger(RegistryOptions registry_options = {}, std::function<bool()> leading = nullptr)
      : registry_options_(std::move(registry_options)), leading_(std::move(leading)) {}

  Result<PushedIndex> MergeAndPushIndex(const BuildRecord& build);

 private:
  std::shared_ptr<const RegistryClient> Client(const std::string& host);
  void Forget(const std::string& host);

  const RegistryOptions registry_options_;
  const std::function<bool()> leading_;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<const RegistryClient>> clients_;  // by registry host
};

}  // namespace manifold
