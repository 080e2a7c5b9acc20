// OutputBuffer: one job's build output waiting to be sent, bounded to its first and last
// bytes.
//
// The agent flushes output every loop turn, so the buffer is small unless the coordinator
// asked it to hold output (LogFlowMsg) or a step prints faster than a turn. Past the bound
// it keeps the first half (the head) and the last half (the tail), cuts the middle in
// batches, and puts a line saying how many bytes were cut where they were, as the
// coordinator's own cap does. Not thread-safe (the agent guards it with its mutex).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace manifold {

class OutputBuffer {
 public:
  explicit OutputBuffer(uint64_t max_bytes) : max_bytes_(max_bytes) {}

  void Append(std::string_view text);
  // What waits, with the marker at the cut if any; empties the buffer.
  std::string Take();
  bool empty() const { return head_.empty() && tail_.empty(); }
  // Bytes cut since the last call; for the metrics.
  uint64_t TakeNewlyCut();

  // The line put where held output was cut.
  static std::string Marker(uint64_t cut_bytes);

 private:
  uint64_t head_limit() const { return max_bytes_ / 2; }
  uint64_t tail_limit() const { return max_bytes_ - head_limit(); }

  const uint64_t max_bytes_;
  std::string head_;
  std::string tail_;  // past the head; may grow a quarter past its limit before a cut
  uint64_t cut_ = 0;  // cut between head_ and tail_
  uint64_t newly_cut_ = 0;
};

}  // namespace manifold
