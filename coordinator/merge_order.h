// NextMerge: which waiting build a free merge thread takes next.
//
// Builds are merged in the order their last job finished, several at once, but a build
// never overtakes an earlier one that pushes to one of the same tags: two pushes to
// `app:latest` in quick succession must leave the later build's index under the tag, as a
// single merge thread did. A pure function over the merge queue, so it is tested alone;
// the caller holds the queue's lock.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <set>
#include <string>

#include "coordinator/build.h"

namespace manifold {

// The position in `waiting` (oldest first) of the first build none of whose tags is in
// `tags_in_flight` (the tags of the merges running now) or among the tags of an earlier
// waiting build; nullopt if every waiting build must wait.
std::optional<size_t> NextMerge(const std::deque<BuildRecord>& waiting,
                                const std::set<std::string>& tags_in_flight);

}  // namespace manifold
