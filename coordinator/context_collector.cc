#include "coordinator/context_collector.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace manifold {
namespace {

ContextRetention WithGraceWithinAge(ContextRetention retention) {
  if (retention.max_age.count() > 0) retention.grace = std::min(retention.grace, retention.max_age);
  return retention;
}

}  // namespace

ContextCollector::ContextCollector(ContextStore& contexts, NeededContexts needed, Metrics& metrics,
                                   ContextRetention retention)
    : contexts_(contexts),
      needed_(std::move(needed)),
      metrics_(metrics),
      retention_(WithGraceWithinAge(retention)) {}

ContextCollector::~ContextCollector() { Stop(); }

std::chrono::seconds ContextCollector::interval() const {
  if (retention_.max_age.count() == 0) return std::chrono::minutes(1);
  return std::clamp<std::chrono::seconds>(retention_.max_age / 4, std::chrono::seconds(1),
                                          std::chrono::minutes(1));
}

void ContextCollector::Start() {
  thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      lock.unlock();
      if (Status ran = RunOnce(); !ran.ok()) {
        spdlog::warn("build contexts not collected this time: {}", ran.message());
      }
      lock.lock();
      wake_.wait_for(lock, interval(), [this] { return stopping_; });
    }
  });
}

void ContextCollector::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status ContextCollector::RunOnce() {
  Result<std::set<std::string>> needed = needed_();
  if (!needed.ok()) {
    return needed.status().WithContext("cannot tell which contexts unfinished builds need");
  }
  Result<ContextCollection> collected = contexts_.Collect(retention_, *needed);
  if (!collected.ok()) return collected.status();
  metrics_.SetContextsStored(collected->contexts_stored, collected->bytes_stored);
  metrics_.CountContextsDeleted("age", collected->deleted_by_age);
  metrics_.CountContextsDeleted("size", collected->deleted_by_size);
  metrics_.CountContextsDeleted("corrupt", collected->deleted_corrupt);
  if (collected->deleted_by_age + collected->deleted_by_size > 0) {
    spdlog::info(
        "deleted {} build context(s) unused for {} s and {} over the size limit; {} bytes in {} "
        "context(s) kept",
        collected->deleted_by_age, retention_.max_age.count(), collected->deleted_by_size,
        collected->bytes_stored, collected->contexts_stored);
  }
  return Status::Ok();
}

}  // namespace manifold
