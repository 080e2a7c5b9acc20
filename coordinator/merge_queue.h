// MergeQueue: the builds whose jobs all succeeded, waiting for their index to be pushed,
// and the threads that push them.
//
// A merge mostly waits on the registry, so several run at once; they are taken in the
// order their builds finished, and a build never overtakes an earlier one that pushes to
// one of its tags (NextMerge, coordinator/merge_order.h), so `app:latest` ends on the later
// build. Transient registry trouble is retried with back-off while the build stays
// merging, which a restarted coordinator resumes; a lasting registry failure fails the
// build. Once the index is pushed its tags have moved, so the build has succeeded: only
// its completion is retried, until the database answers, and it never fails.
// Thread-safe: Request() from any thread; the merge threads share the store and the push.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "coordinator/build.h"
#include "coordinator/loop_store.h"
#include "coordinator/merger.h"
#include "coordinator/metrics.h"

namespace manifold {

class MergeQueue {
 public:
  using PushIndex = std::function<Result<PushedIndex>(const BuildRecord& build)>;

  struct Options {
    int workers = 4;
    int attempts = 5;
    std::chrono::milliseconds first_backoff{2000};  // doubled after each failed attempt
    // Whether this coordinator may push indexes now (LoopOptions::leading): each attempt
    // first waits for it, and a wait is not an attempt. Unset: always.
    std::function<bool()> leading;
  };

  MergeQueue(LoopStore& store, Metrics& metrics, PushIndex push, Options options);
  ~MergeQueue();

  void Start();
  // Stops the threads; a merge under way finishes its current push, and builds still
  // waiting stay merging in the store for the next start.
  void Stop();
  // Queues a merging build (with its jobs) for a push, unless it is queued, merging or
  // among the last builds merged: the loop hands in every merging build again when it
  // reads its view back from the store (AgentLoop), and an index pushed twice could move
  // a tag back over a later build's.
  void Request(BuildRecord build);

 private:
  void Work();
  // Pushes one build's index, retrying with back-off, and records the outcome.
  void Merge(const BuildRecord& build);
  // Records the success of a build whose index is pushed, retrying until the store
  // answers (or the queue stops: the build then stays merging for the next start).
  void Complete(uint64_t build_id, const PushedIndex& pushed);
  // Waits `backoff`, or less when the queue stops.
  void WaitOut(std::chrono::milliseconds backoff);

  LoopStore& store_;
  Metrics& metrics_;
  const PushIndex push_;
  const Options options_;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::condition_variable wakeup_;  // a build to merge (or stopping)
  // Where a thread waits out its back-off: apart, so a wakeup for a new build always
  // reaches an idle thread.
  std::condition_variable backoff_;
  std::deque<BuildRecord> waiting_;       // guarded by mutex_
  std::set<std::string> tags_in_flight_;  // the tags of the merges running now; mutex_
  // Builds queued, merging, or among the last kRememberedMerges merged (merged_, oldest
  // first); mutex_.
  static constexpr size_t kRememberedMerges = 1024;
  std::set<uint64_t> requested_;
  std::deque<uint64_t> merged_;
  std::vector<std::thread> threads_;
};

}  // namespace manifold
