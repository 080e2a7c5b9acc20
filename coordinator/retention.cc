#include "coordinator/retention.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

namespace manifold {

Result<std::chrono::seconds> ParseRetention(std::string_view flag, std::string_view text) {
  int64_t number = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  std::string_view unit(end, text.data() + text.size() - end);
  static constexpr std::pair<std::string_view, int64_t> kUnits[] = {
      {"", 1}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}};
  const auto* found = std::find_if(std::begin(kUnits), std::end(kUnits),
                                   [&](const auto& u) { return u.first == unit; });
  constexpr int64_t kMost = int64_t{10} * 365 * 86400;
  if (error != std::errc() || number < 0 || found == std::end(kUnits) ||
      number > kMost / found->second) {
    return Status::InvalidArgument(std::string(flag) + " takes a duration such as 30d, 12h, 90m " +
                                   "or 60s (0 keeps everything forever; at most 10 years), not \"" +
                                   std::string(text) + "\"");
  }
  return std::chrono::seconds(number * found->second);
}

std::string FormatRetention(std::chrono::seconds keep) {
  int64_t s = keep.count();
  auto plural = [](int64_t n, const char* unit) {
    return std::to_string(n) + " " + unit + (n == 1 ? "" : "s");
  };
  if (s > 0 && s % 86400 == 0) return plural(s / 86400, "day");
  if (s > 0 && s % 3600 == 0) return plural(s / 3600, "hour");
  if (s > 0 && s % 60 == 0) return plural(s / 60, "minute");
  return plural(s, "second");
}

Retention::Retention(RetentionStore& store, Metrics& metrics, RetentionOptions options)
    : store_(store), metrics_(metrics), options_(std::move(options)) {}

Retention::~Retention() { Stop(); }

Status Retention::Start() {
  Result<std::map<std::string, int>> finished = store_.CountBuilds(/*finished=*/true);
  if (!finished.ok()) return finished.status();
  metrics_.SetFinishedBuilds(*finished);
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void Retention::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Retention::Run() {
  // Short retentions (tests, the soak benchmark) are kept closely; long ones cost one
  // small query a minute when nothing is due.
  const auto prune_every = std::clamp<std::chrono::steady_clock::duration>(
      options_.keep / 4, std::chrono::seconds(1), std::chrono::minutes(1));
  auto next_prune = std::chrono::steady_clock::now();
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    CountUnfinished();
    if (options_.keep.count() > 0 && std::chrono::steady_clock::now() >= next_prune) {
      Prune();
      next_prune = std::chrono::steady_clock::now() + prune_every;
    }
    lock.lock();
    wake_.wait_for(lock, options_.count_every, [this] { return stopping_; });
  }
}

void Retention::Prune() {
  int builds = 0;
  for (;;) {
    Result<std::map<std::string, int>> deleted =
        store_.PruneBuilds(options_.keep, options_.batch_builds);
    if (!deleted.ok()) {
      spdlog::warn("cannot delete builds past the retention of {}: {}",
                   FormatRetention(options_.keep), deleted.status().message());
      return;
    }
    metrics_.ForgetFinishedBuilds(*deleted);
    int batch = 0;
    for (const auto& [state, count] : *deleted) batch += count;
    builds += batch;
    std::lock_guard lock(mutex_);
    if (batch < options_.batch_builds || stopping_) break;
  }
  if (builds > 0) {
    spdlog::info("deleted {} build(s) that ended over {} ago, with their jobs, events and logs",
                 builds, FormatRetention(options_.keep));
  }
  std::vector<std::string> connected =
      options_.connected_agents ? options_.connected_agents() : std::vector<std::string>{};
  Result<int> agents = store_.PruneAgents(options_.keep, connected);
  if (!agents.ok()) {
    spdlog::warn("cannot delete agents gone longer than the retention: {}",
                 agents.status().message());
  } else if (*agents > 0) {
    spdlog::info("deleted {} agent(s) last seen over {} ago", *agents,
                 FormatRetention(options_.keep));
  }
}

void Retention::CountUnfinished() {
  Result<std::map<std::string, int>> counts = store_.CountBuilds(/*finished=*/false);
  if (counts.ok()) metrics_.SetUnfinishedBuilds(*counts);
}

}  // namespace manifold
