// Cache transfer: moves a job's registry cache between the registry and an OCI image
// layout on the agent, with the agent's own registry client and so the same credentials,
// TLS settings and insecure-registry list as the image push.
//
// A platform's cache is one OCI image index at its cache ref (REPO/OS-ARCH:TAG, see
// common/registry_cache.h) listing the images of the build's steps in build order, first
// to last, with its push time as org.opencontainers.image.created; the index keeps its
// children from garbage collection. Fetching writes every child of every ref in the
// layout under ref names "cache-1", "cache-2"... in that order, so that the builder can
// load them into its layer cache; a ref pushed longer ago than the TTL is skipped.
// Neither direction fails the build: a cache that cannot be read or written is reported
// and the build goes on without it.
//
// Plain functions; thread-safe (each call makes its own clients).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "agent/held_caches.h"
#include "common/messages.h"
#include "common/registry.h"
#include "common/status.h"

namespace manifold {

// The name of the image that keeps the registry cache of `repository` (the image
// repository a job pushes to first) for `platform` in the agent's store: the last step
// image of its newest build there.
std::string CacheImageName(const std::string& repository, const Platform& platform);

// What FetchRegistryCache did.
struct CacheFetch {
  int images = 0;      // step images written to the layout, for the builder to load
  uint64_t bytes = 0;  // pulled: manifests and blobs, also of refs then not used
  // The step images (manifest digests) of each ref the build starts from, fetched into the
  // layout or already in the store.
  std::map<std::string, std::vector<std::string>> refs;
};

// Fetches the images of each ref of cache.from that exists and is within cache.ttl_seconds
// into the layout at `dir` (created), except those of a ref `held` (may be null) says the
// store has. Says what it did, or why a ref was not used, through `say`.
CacheFetch FetchRegistryCache(const RegistryCacheSpec& cache, const RegistryOptions& options,
                              const HeldCaches* held, const std::string& dir,
                              const std::function<void(const std::string&)>& say);

// Pushes every image of the layout at `dir`, in its index.json order, to the repository of
// `cache_ref`, then the index listing them under its tag. *images gets their manifest
// digests.
Status PushRegistryCache(const std::string& dir, const std::string& cache_ref,
                         const RegistryOptions& options, PushStats* stats,
                         std::vector<std::string>* images);

}  // namespace manifold
