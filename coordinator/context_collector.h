// ContextCollector: deletes build contexts past their retention (ContextRetention), on a
// thread of its own so that hashing and deleting files never hold up the agent loop.
//
// Each pass first asks which contexts unfinished builds need, and skips the pass if that
// cannot be known (the database is down): a context is never deleted on a guess. Reports
// what is stored and what was deleted to Metrics. Thread-safe: Start and Stop from one
// thread; RunOnce from any.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "coordinator/context_store.h"
#include "coordinator/metrics.h"

namespace manifold {

class ContextCollector {
 public:
  // The digests of the contexts that queued and running builds need.
  using NeededContexts = std::function<Result<std::set<std::string>>()>;

  // `retention.grace` above a positive max_age is lowered to it.
  ContextCollector(ContextStore& contexts, NeededContexts needed, Metrics& metrics,
                   ContextRetention retention);
  ~ContextCollector();

  // A pass now, then one every `interval()` until Stop.
  void Start();
  void Stop();
  // One pass.
  Status RunOnce();
  // A quarter of max_age, within a second and a minute: short ages (tests) are kept
  // closely, long ones cost a directory listing a minute.
  std::chrono::seconds interval() const;

 private:
  ContextStore& contexts_;
  const NeededContexts needed_;
  Metrics& metrics_;
  const ContextRetention retention_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace manifold
