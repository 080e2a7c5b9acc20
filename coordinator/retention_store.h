// RetentionStore: what the coordinator's retention (coordinator/retention.h) needs from
// durable state: deleting finished builds and gone agents older than the retention, and
// the counts of builds by state for the gauges. The PostgreSQL Store implements it; the
// retention is given a Store of its own (one connection), so its deletes never wait for
// the loop's connections nor hold them. Implementations are thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace manifold {

class RetentionStore {
 public:
  virtual ~RetentionStore() = default;

  // Deletes at most `max_builds` builds that finished more than `keep` ago (those that
  // ended first go first), with their jobs, job events and logs, in one transaction.
  // Returns how many of each final state it deleted.
  virtual Result<std::map<std::string, int>> PruneBuilds(std::chrono::seconds keep,
                                                         int max_builds) = 0;
  // Deletes the agents last seen more than `keep` ago that are not in `connected` and
  // that no job names any more; returns how many.
  virtual Result<int> PruneAgents(std::chrono::seconds keep,
                                  const std::vector<std::string>& connected) = 0;
  // Builds by state: the unfinished ones (queued, running, merging; cheap, from their
  // index), or the finished ones (a count over them all: asked once, at start).
  virtual Result<std::map<std::string, int>> CountBuilds(bool finished) = 0;
};

}  // namespace manifold
