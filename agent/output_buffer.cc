#include "agent/output_buffer.h"

#include <algorithm>
#include <utility>

namespace manifold {

void OutputBuffer::Append(std::string_view text) {
  if (head_.size() < head_limit()) {
    size_t room = std::min<size_t>(text.size(), head_limit() - head_.size());
    head_.append(text.substr(0, room));
    text.remove_prefix(room);
  }
  tail_.append(text);
  // Cut in batches, not on every append: the tail may exceed its half by a quarter.
  if (tail_.size() > tail_limit() + tail_limit() / 4) {
    size_t cut = tail_.size() - tail_limit();
    tail_.erase(0, cut);
    cut_ += cut;
    newly_cut_ += cut;
  }
}

std::string OutputBuffer::Take() {
  std::string text = std::move(head_);
  if (cut_ > 0) text += Marker(cut_);
  text += tail_;
  head_.clear();
  tail_.clear();
  cut_ = 0;
  return text;
}

uint64_t OutputBuffer::TakeNewlyCut() { return std::exchange(newly_cut_, 0); }

std::string OutputBuffer::Marker(uint64_t cut_bytes) {
  return "\n[manifold: output clipped, " + std::to_string(cut_bytes) +
         " bytes cut here while the agent held its output for the coordinator]\n";
}

}  // namespace manifold
