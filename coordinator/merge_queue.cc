#include "coordinator/merge_queue.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/log.h"
#include "coordinator/merge_order.h"

namespace manifold {
namespace {

// The longest wait between tries to record a pushed build's success: the database is back
// within this of its return.
constexpr std::chrono::milliseconds kMaxCompletionBackoff{30000};
// How often a merge waiting for a lapsed leader lease to be renewed looks again.
constexpr std::chrono::milliseconds kLeadershipPoll{200};

}  // namespace

MergeQueue::MergeQueue(LoopStore& store, Metrics& metrics, PushIndex push, Options options)
    : store_(store), metrics_(metrics), push_(std::move(push)), options_(options) {}

MergeQueue::~MergeQueue() { Stop(); }

void MergeQueue::Start() {
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    threads_.emplace_back([this] { Work(); });
  }
}

void MergeQueue::Stop() {
  stopping_ = true;
  {
    std::lock_guard lock(mutex_);  // no thread is between its check and its wait
  }
  wakeup_.notify_all();
  backoff_.notify_all();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

void MergeQueue::Request(BuildRecord build) {
  std::lock_guard lock(mutex_);
  if (!requested_.insert(build.id).second) return;
  waiting_.push_back(std::move(build));
  wakeup_.notify_one();
}

void MergeQueue::Work() {
  while (true) {
    BuildRecord build;
    {
      std::unique_lock lock(mutex_);
      std::optional<size_t> next;
      wakeup_.wait(lock, [&] {
        return stopping_ || (next = NextMerge(waiting_, tags_in_flight_)).has_value();
      });
      if (stopping_) return;
      build = std::move(waiting_[*next]);
      waiting_.erase(waiting_.begin() + static_cast<std::ptrdiff_t>(*next));
      tags_in_flight_.insert(build.spec.tags.begin(), build.spec.tags.end());
    }
    Merge(build);
    {
      std::lock_guard lock(mutex_);
      for (const std::string& tag : build.spec.tags) tags_in_flight_.erase(tag);
      merged_.push_back(build.id);
      if (merged_.size() > kRememberedMerges) {
        requested_.erase(merged_.front());
        merged_.pop_front();
      }
    }
    wakeup_.notify_all();  // a build that waited for these tags may go now
  }
}

void MergeQueue::Merge(const BuildRecord& build) {
  const uint64_t build_id = build.id;
  Status status;
  auto backoff = options_.first_backoff;
  for (int attempt = 1; attempt <= options_.attempts && !stopping_; ++attempt) {
    while (options_.leading && !options_.leading() && !stopping_) WaitOut(kLeadershipPoll);
    if (stopping_) return;
    Result<PushedIndex> pushed = push_(build);
    if (pushed.ok()) {
      spdlog::info("{}build {}: index {} pushed to {} tag(s)", LogIds{.build = build_id}, build_id,
                   pushed->digest, build.spec.tags.size());
      Complete(build_id, *pushed);
      return;
    }
    status = pushed.status();
    if (!status.retryable()) break;
    spdlog::warn("{}build {}: merge attempt {} failed: {}", LogIds{.build = build_id}, build_id,
                 attempt, status.message());
    if (attempt == options_.attempts) break;
    WaitOut(backoff);
    backoff *= 2;
  }
  if (stopping_) return;
  spdlog::error("{}build {} failed at merge: {}", LogIds{.build = build_id}, build_id,
                status.message());
  metrics_.CountBuild("failed");
  Status failed = store_.FailBuild(build_id, "pushing the image index failed: " + status.message());
  if (!failed.ok()) {
    spdlog::error("{}cannot record failure of build {}: {}", LogIds{.build = build_id}, build_id,
                  failed.message());
  }
}

void MergeQueue::Complete(uint64_t build_id, const PushedIndex& pushed) {
  auto backoff = options_.first_backoff;
  while (!stopping_) {
    Result<double> took = store_.CompleteBuild(build_id, pushed.digest, pushed.media_type);
    if (took.ok()) {
      metrics_.CountBuild("succeeded");
      metrics_.ObserveBuildDuration(*took);
      return;
    }
    if (!took.status().retryable()) {
      // The database answered, and retrying will not change its answer; the build stays
      // merging, for a restarted coordinator to push and complete again.
      spdlog::error("{}build {}: cannot record its success: {}", LogIds{.build = build_id},
                    build_id, took.status().message());
      return;
    }
    spdlog::warn("{}build {}: index pushed, but its success is not recorded yet: {}",
                 LogIds{.build = build_id}, build_id, took.status().message());
    WaitOut(backoff);
    backoff = std::min(backoff * 2, kMaxCompletionBackoff);
  }
}

void MergeQueue::WaitOut(std::chrono::milliseconds backoff) {
  std::unique_lock lock(mutex_);
  backoff_.wait_for(lock, backoff, [&] { return stopping_.load(); });
}

}  // namespace manifold
