// LogCap: how much of one job's build output the store keeps (--job-log-max-bytes).
//
// A job's output is stored as it comes until its first half of the cap is full (the
// head); past it, only the last half (the tail) is kept: once the tail has grown a quarter
// past its half, its oldest chunks are deleted, in one batch, down to the half, and the
// bytes cut are counted so that readers put a marker where they were. Whole chunks are
// kept or cut, so the head may end past its half by the chunk that filled it, and the
// newest chunk is never cut. All attempts of a job share one cap. Pure logic; plain
// values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace manifold {

struct LogCap {
  uint64_t max_bytes = 2u << 20;  // 0: keep everything

  uint64_t head_limit() const { return max_bytes / 2; }
  uint64_t tail_limit() const { return max_bytes - head_limit(); }
};

// What the store knows of a job's output so far.
struct JobLogSpan {
  uint64_t head_bytes = 0;
  bool head_full = false;
  uint64_t tail_bytes = 0;  // stored past the head, not cut
};

// Counts a stored chunk of `bytes`; true if it belongs to the head (the head is full once
// it holds its half: the chunk that fills it is the head's last).
bool AddToHead(const LogCap& cap, JobLogSpan& span, uint64_t bytes);
// Whether the tail has grown far enough past its half that its oldest chunks are cut now.
bool TailDueForCut(const LogCap& cap, const JobLogSpan& span);
// Of the tail's chunks, oldest first, how many to cut so that the rest fit in its half;
// never the newest.
size_t ChunksToCut(const LogCap& cap, const std::vector<uint64_t>& tail_chunk_bytes);
// The line readers show where `cut_bytes` of a job's output were cut.
std::string LogCutMarker(uint64_t cut_bytes);

}  // namespace manifold
