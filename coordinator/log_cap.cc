#include "coordinator/log_cap.h"

namespace manifold {

bool AddToHead(const LogCap& cap, JobLogSpan& span, uint64_t bytes) {
  if (span.head_full) {
    span.tail_bytes += bytes;
    return false;
  }
  span.head_bytes += bytes;
  span.head_full = cap.max_bytes > 0 && span.head_bytes >= cap.head_limit();
  return true;
}

bool TailDueForCut(const LogCap& cap, const JobLogSpan& span) {
  return span.head_full && span.tail_bytes > cap.tail_limit() + cap.tail_limit() / 4;
}

size_t ChunksToCut(const LogCap& cap, const std::vector<uint64_t>& tail_chunk_bytes) {
  uint64_t kept = 0;
  for (uint64_t bytes : tail_chunk_bytes) kept += bytes;
  size_t cut = 0;
  while (cut + 1 < tail_chunk_bytes.size() && kept > cap.tail_limit()) {
    kept -= tail_chunk_bytes[cut++];
  }
  return cut;
}

std::string LogCutMarker(uint64_t cut_bytes) {
  return "\n[manifold: output clipped, " + std::to_string(cut_bytes) +
         " bytes cut here: each job keeps the first and the last half of "
         "--job-log-max-bytes]\n";
}

}  // namespace manifold
