#include "agent/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace manifold {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

namespace {

// Seconds: a cached rebuild or a push of one small layer up to an hour-long build.
const Histogram::BucketBoundaries kDurationBuckets = {0.1, 0.25, 0.5, 1,   2.5,  5,    10,  30,
                                                      60,  120,  300, 600, 1200, 1800, 3600};

const char* const kJobResults[] = {"succeeded", "failed", "failed_retryable", "canceled",
                                   "refused"};
const char* const kStepResults[] = {"succeeded", "failed"};

}  // namespace

struct AgentMetrics::Families {
  explicit Families(prometheus::Registry& r)
      : info(BuildGauge()
                 .Name("manifold_agent_info")
                 .Help("Always 1; labels carry the agent's version")
                 .Register(r)),
        emulated(BuildGauge()
                     .Name("manifold_agent_platform_emulated")
                     .Help("1 if this agent builds the platform under QEMU, 0 if natively")
                     .Register(r)),
        slots(BuildGauge()
                  .Name("manifold_agent_job_slots")
                  .Help("Jobs this agent runs at once (--slots)")
                  .Register(r)),
        slots_busy(BuildGauge()
                       .Name("manifold_agent_job_slots_busy")
                       .Help("Slots running a job right now")
                       .Register(r)),
        draining(BuildGauge()
                     .Name("manifold_agent_draining")
                     .Help("1 while the agent drains (takes no new jobs) before it exits")
                     .Register(r)),
        logs_held(BuildGauge()
                      .Name("manifold_agent_logs_held")
                      .Help("1 while the coordinator asks this agent to hold build output "
                            "(its backlog for the database is full)")
                      .Register(r)),
        log_bytes_cut(BuildCounter()
                          .Name("manifold_agent_log_bytes_cut_total")
                          .Help("Build output bytes cut from the middle of a job's held output "
                                "(its first and last bytes are kept)")
                          .Register(r)),
        jobs_total(BuildCounter()
                       .Name("manifold_agent_jobs_total")
                       .Help("Job attempts this agent ended, per platform and result "
                             "(succeeded|failed|failed_retryable|canceled|refused)")
                       .Register(r)),
        build_duration(BuildHistogram()
                           .Name("manifold_agent_build_duration_seconds")
                           .Help("Time the builder ran for one job, per platform and result")
                           .Register(r)),
        push_duration(BuildHistogram()
                          .Name("manifold_agent_push_duration_seconds")
                          .Help("Time pushing one job's image to one repository, per platform "
                                "and result")
                          .Register(r)),
        uploaded_bytes(BuildCounter()
                           .Name("manifold_agent_registry_uploaded_bytes_total")
                           .Help("Blob bytes uploaded to registries, per platform")
                           .Register(r)),
        skipped_bytes(BuildCounter()
                          .Name("manifold_agent_registry_skipped_bytes_total")
                          .Help("Blob bytes not uploaded because the registry already had the "
                                "blob, per platform")
                          .Register(r)),
        blobs(BuildCounter()
                  .Name("manifold_agent_registry_blobs_total")
                  .Help("Blobs pushed, per platform and outcome (uploaded|skipped|mounted)")
                  .Register(r)),
        retried(BuildCounter()
                    .Name("manifold_agent_registry_requests_retried_total")
                    .Help("Registry requests sent again after a transient failure, per platform")
                    .Register(r)),
        registry_requests(BuildCounter()
                              .Name("manifold_agent_registry_requests_total")
                              .Help("HTTP requests sent to registries while pushing, per "
                                    "platform, operation and status (the HTTP status, or error "
                                    "when none came)")
                              .Register(r)),
        cache_steps(BuildCounter()
                        .Name("manifold_agent_cache_steps_total")
                        .Help("Build steps (Dockerfile instructions after FROM) per platform "
                              "and result: hit when the builder's layer cache served the step, "
                              "miss when it ran")
                        .Register(r)),
        cache_bytes_pulled(BuildCounter()
                               .Name("manifold_agent_cache_bytes_pulled_total")
                               .Help("Bytes pulled from the registry cache into this agent "
                                     "(cache images and cache mounts), per platform")
                               .Register(r)),
        cache_bytes_pushed(BuildCounter()
                               .Name("manifold_agent_cache_bytes_pushed_total")
                               .Help("Bytes pushed from this agent to the registry cache (cache "
                                     "images and cache mounts), per platform")
                               .Register(r)),
        store_bytes(BuildGauge()
                        .Name("manifold_agent_image_store_bytes")
                        .Help("Bytes the container storage (layers, base and cache images) "
                              "takes on disk, as last measured")
                        .Register(r)),
        store_free_bytes(BuildGauge()
                             .Name("manifold_agent_image_store_free_bytes")
                             .Help("Bytes free on the container storage's file system, as last "
                                   "measured")
                             .Register(r)),
        pruned_images(BuildCounter()
                          .Name("manifold_agent_image_store_pruned_images_total")
                          .Help("Images removed from the container storage to keep it under "
                                "--cache-max-bytes and above --min-free-disk")
                          .Register(r)),
        pruned_bytes(BuildCounter()
                         .Name("manifold_agent_image_store_pruned_bytes_total")
                         .Help("Bytes those removals freed")
                         .Register(r)),
        cache_mounts(BuildCounter()
                         .Name("manifold_agent_cache_mounts_transfers_total")
                         .Help("Cache-mount artifacts pushed on drain and pulled by a cold "
                               "agent, by direction and result (succeeded, failed, none, "
                               "too_large: over --cache-mounts-max-bytes, not pushed)")
                         .Register(r)),
        cache_mounts_bytes(BuildCounter()
                               .Name("manifold_agent_cache_mounts_bytes_total")
                               .Help("Bytes of the cache-mount artifacts pushed and pulled")
                               .Register(r)),
        warm_start(BuildCounter()
                       .Name("manifold_agent_warm_start_caches_total")
                       .Help("Registry caches this agent loaded when it started, before a "
                             "build needed them, by platform and result (loaded, failed)")
                       .Register(r)) {}

  Family<Gauge>& info;
  Family<Gauge>& emulated;
  Family<Gauge>& slots;
  Family<Gauge>& slots_busy;
  Family<Gauge>& draining;
  Family<Gauge>& logs_held;
  Family<Counter>& log_bytes_cut;
  Family<Counter>& jobs_total;
  Family<Histogram>& build_duration;
  Family<Histogram>& push_duration;
  Family<Counter>& uploaded_bytes;
  Family<Counter>& skipped_bytes;
  Family<Counter>& blobs;
  Family<Counter>& retried;
  Family<Counter>& registry_requests;
  Family<Counter>& cache_steps;
  Family<Counter>& cache_bytes_pulled;
  Family<Counter>& cache_bytes_pushed;
  Family<Gauge>& store_bytes;
  Family<Gauge>& store_free_bytes;
  Family<Counter>& pruned_images;
  Family<Counter>& pruned_bytes;
  Family<Counter>& cache_mounts;
  Family<Counter>& cache_mounts_bytes;
  Family<Counter>& warm_start;
};

AgentMetrics::AgentMetrics(const std::vector<PlatformOffer>& platforms, uint32_t slots,
                           const std::string& version)
    : registry_(std::make_shared<prometheus::Registry>()),
      families_(std::make_unique<Families>(*registry_)) {
  families_->info.Add({{"version", version}}).Set(1);
  families_->slots.Add({}).Set(slots);
  families_->slots_busy.Add({}).Set(0);
  families_->draining.Add({}).Set(0);
  families_->logs_held.Add({}).Set(0);
  families_->log_bytes_cut.Add({});
  families_->store_bytes.Add({});
  families_->store_free_bytes.Add({});
  families_->pruned_images.Add({});
  families_->pruned_bytes.Add({});
  for (const PlatformOffer& offer : platforms) {
    std::string p = offer.platform.ToString();
    families_->emulated.Add({{"platform", p}}).Set(offer.emulated ? 1 : 0);
    for (const char* result : kJobResults) {
      families_->jobs_total.Add({{"platform", p}, {"result", result}});
    }
    for (const char* result : kStepResults) {
      families_->build_duration.Add({{"platform", p}, {"result", result}}, kDurationBuckets);
      families_->push_duration.Add({{"platform", p}, {"result", result}}, kDurationBuckets);
    }
    families_->uploaded_bytes.Add({{"platform", p}});
    families_->skipped_bytes.Add({{"platform", p}});
    for (const char* outcome : {"uploaded", "skipped", "mounted"}) {
      families_->blobs.Add({{"platform", p}, {"outcome", outcome}});
    }
    families_->retried.Add({{"platform", p}});
    for (const char* result : {"hit", "miss"}) {
      families_->cache_steps.Add({{"platform", p}, {"result", result}});
    }
    families_->cache_bytes_pulled.Add({{"platform", p}});
    families_->cache_bytes_pushed.Add({{"platform", p}});
  }
}

AgentMetrics::~AgentMetrics() = default;

int AgentMetrics::Serve(const std::string& address) {
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(address);
  } catch (const std::exception&) {
    return -1;  // civetweb could not bind or parse the address
  }
  exposer_->RegisterCollectable(registry_);
  std::vector<int> ports = exposer_->GetListeningPorts();
  return ports.empty() ? -1 : ports.front();
}

void AgentMetrics::CountJob(const Platform& platform, const std::string& result) {
  families_->jobs_total.Add({{"platform", platform.ToString()}, {"result", result}}).Increment();
}

void AgentMetrics::ObserveBuild(const Platform& platform, const std::string& result,
                                double seconds) {
  families_->build_duration
      .Add({{"platform", platform.ToString()}, {"result", result}}, kDurationBuckets)
      .Observe(seconds);
}

void AgentMetrics::ObservePush(const Platform& platform, const std::string& result, double seconds,
                               const PushStats& stats) {
  std::string p = platform.ToString();
  families_->push_duration.Add({{"platform", p}, {"result", result}}, kDurationBuckets)
      .Observe(seconds);
  families_->uploaded_bytes.Add({{"platform", p}})
      .Increment(static_cast<double>(stats.bytes_pushed));
  families_->skipped_bytes.Add({{"platform", p}})
      .Increment(static_cast<double>(stats.bytes_skipped));
  families_->blobs.Add({{"platform", p}, {"outcome", "uploaded"}}).Increment(stats.blobs_pushed);
  families_->blobs.Add({{"platform", p}, {"outcome", "skipped"}}).Increment(stats.blobs_skipped);
  families_->blobs.Add({{"platform", p}, {"outcome", "mounted"}}).Increment(stats.blobs_mounted);
  families_->retried.Add({{"platform", p}}).Increment(stats.requests_retried);
}

void AgentMetrics::CountRegistryRequest(const Platform& platform, RegistryOperation operation,
                                        long status) {
  families_->registry_requests
      .Add({{"platform", platform.ToString()},
            {"operation", std::string(RegistryOperationName(operation))},
            {"status", RegistryStatusName(status)}})
      .Increment();
}

void AgentMetrics::CountCacheSteps(const Platform& platform, int hits, int misses) {
  std::string p = platform.ToString();
  families_->cache_steps.Add({{"platform", p}, {"result", "hit"}}).Increment(hits);
  families_->cache_steps.Add({{"platform", p}, {"result", "miss"}}).Increment(misses);
}

void AgentMetrics::CountCacheBytes(const Platform& platform, uint64_t pulled, uint64_t pushed) {
  std::string p = platform.ToString();
  families_->cache_bytes_pulled.Add({{"platform", p}}).Increment(static_cast<double>(pulled));
  families_->cache_bytes_pushed.Add({{"platform", p}}).Increment(static_cast<double>(pushed));
}

void AgentMetrics::SetImageStore(uint64_t used_bytes, uint64_t free_bytes) {
  families_->store_bytes.Add({}).Set(static_cast<double>(used_bytes));
  families_->store_free_bytes.Add({}).Set(static_cast<double>(free_bytes));
}

void AgentMetrics::CountPruned(uint64_t images, uint64_t bytes) {
  families_->pruned_images.Add({}).Increment(static_cast<double>(images));
  families_->pruned_bytes.Add({}).Increment(static_cast<double>(bytes));
}

void AgentMetrics::CountCacheMounts(const Platform& platform, const std::string& direction,
                                    const std::string& result, uint64_t bytes) {
  families_->cache_mounts.Add({{"direction", direction}, {"result", result}}).Increment();
  families_->cache_mounts_bytes.Add({{"direction", direction}})
      .Increment(static_cast<double>(bytes));
  const bool pulled = direction == "pull";
  CountCacheBytes(platform, pulled ? bytes : 0, pulled ? 0 : bytes);
}

void AgentMetrics::CountWarmStartCache(const Platform& platform, bool loaded) {
  families_->warm_start
      .Add({{"platform", platform.ToString()}, {"result", loaded ? "loaded" : "failed"}})
      .Increment();
}

void AgentMetrics::SetSlotsBusy(uint32_t busy) { families_->slots_busy.Add({}).Set(busy); }

void AgentMetrics::SetDraining(bool draining) { families_->draining.Add({}).Set(draining ? 1 : 0); }

void AgentMetrics::SetLogsHeld(bool held) { families_->logs_held.Add({}).Set(held ? 1 : 0); }

void AgentMetrics::CountLogBytesCut(uint64_t bytes) {
  families_->log_bytes_cut.Add({}).Increment(static_cast<double>(bytes));
}

std::string AgentMetrics::Text() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace manifold
