// AgentMetrics: one agent's Prometheus series (prometheus-cpp), served on /metrics.
//
// The coordinator's series (coordinator/metrics.h) describe the fleet as the coordinator
// sees it; these describe what happens on this host: how long builds and pushes take, how
// many bytes reach the registry and how many are skipped because the blob was already
// there, which requests went to registries and how they were answered, how many build
// steps the layer cache served and how many bytes went to and from the registry cache, how much the
// container storage holds and what pruning it freed, how busy the slots are and which platforms run
// under QEMU. Names carry the manifold_agent_ prefix, base units (seconds, bytes) and _total for
// counters. Series for every served platform exist at 0 from the start, so rates and alerts see
// them before the first job. Thread-safe: prometheus-cpp metrics are atomic, and job threads report
// here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/messages.h"
#include "common/registry.h"

namespace prometheus {
class Registry;
class Exposer;
}  // namespace prometheus

namespace manifold {

class AgentMetrics {
 public:
  // `platforms` and `slots` are the agent's offer; they label and size the series.
  AgentMetrics(const std::vector<PlatformOffer>& platforms, uint32_t slots,
               const std::string& version);
  ~AgentMetrics();
  AgentMetrics(const AgentMetrics&) = delete;
  AgentMetrics& operator=(const AgentMetrics&) = delete;

  // Serves /metrics on "HOST:PORT" (port 0 picks a free one). Returns the bound port, or
  // -1 if the address cannot be bound.
  int Serve(const std::string& address);

  // A job attempt ended: result is succeeded, failed (not retryable), failed_retryable,
  // canceled or refused (assigned while no slot was free).
  void CountJob(const Platform& platform, const std::string& result);
  // The builder ran for `seconds`; result is succeeded or failed.
  void ObserveBuild(const Platform& platform, const std::string& result, double seconds);
  // One PushLayout to one repository ended after `seconds`; result is succeeded or
  // failed. Its stats hold what was uploaded and what the registry already had, which
  // counts even when a later blob failed: those bytes did cross the network.
  void ObservePush(const Platform& platform, const std::string& result, double seconds,
                   const PushStats& stats);
  // One HTTP request of a push to a registry (RegistryOptions::on_request).
  void CountRegistryRequest(const Platform& platform, RegistryOperation operation, long status);
  // Steps of one build that the layer cache served (hits) and that ran (misses).
  void CountCacheSteps(const Platform& platform, int hits, int misses);
  // Bytes one transfer between this agent and the registry cache moved for `platform`:
  // cache images or cache mounts pulled before a build, pushed after it or at drain.
  void CountCacheBytes(const Platform& platform, uint64_t pulled, uint64_t pushed);
  // The container storage (ImageStore): bytes it holds on disk and bytes free on its file
  // system, as the last pass measured them.
  void SetImageStore(uint64_t used_bytes, uint64_t free_bytes);
  // A pass removed `images` images, freeing `bytes` (measured before and after).
  void CountPruned(uint64_t images, uint64_t bytes);
  // A cache-mount artifact of `platform` was pushed (direction "push") or pulled ("pull"):
  // result succeeded, failed, none (nothing to pull) or too_large (over its bound, not
  // pushed). Its bytes count in the cache bytes of CountCacheBytes too.
  void CountCacheMounts(const Platform& platform, const std::string& direction,
                        const std::string& result, uint64_t bytes);
  // A warm start (agent/warm_start.h) loaded one registry cache of `platform`, or failed to.
  void CountWarmStartCache(const Platform& platform, bool loaded);
  void SetSlotsBusy(uint32_t busy);
  void SetDraining(bool draining);
  // Build output held back at the coordinator's request (LogFlowMsg), and the bytes cut
  // from the middle of a job's held output once it filled its bound.
  void SetLogsHeld(bool held);
  void CountLogBytesCut(uint64_t bytes);

  // The text exposition of every series, as /metrics serves it (for tests and logs).
  std::string Text() const;

 private:
  struct Families;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Families> families_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace manifold
