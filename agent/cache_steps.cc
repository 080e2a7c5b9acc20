#include "agent/cache_steps.h"

#include <algorithm>
#include <regex>

namespace manifold {
namespace {

// Step and cache lines are short; of a longer line (a RUN step's output without newlines)
// only the start is kept, which is all that is matched.
constexpr size_t kMaxLine = 4096;

void AppendCapped(std::string* line, std::string_view more) {
  if (line->size() < kMaxLine) line->append(more.substr(0, kMaxLine - line->size()));
}

bool IsFrom(const std::string& instruction) {
  return instruction.compare(0, 5, "FROM ") == 0 || instruction.compare(0, 5, "from ") == 0;
}

}  // namespace

void CacheStepCounter::Add(std::string_view output) {
  size_t start = 0;
  for (size_t newline = output.find('\n'); newline != std::string_view::npos;
       newline = output.find('\n', start)) {
    AppendCapped(&partial_, output.substr(start, newline - start));
    Line(partial_, &tally_);
    partial_.clear();
    start = newline + 1;
  }
  AppendCapped(&partial_, output.substr(start));
}

CacheSteps CacheStepCounter::Count() const {
  Tally tally = tally_;
  if (!partial_.empty()) Line(partial_, &tally);
  CacheSteps out;
  // A cache line belongs to the step announced before it, so there are never more.
  out.hits = std::min(tally.buildah_cached, tally.buildah_steps);
  out.misses = tally.buildah_steps - out.hits;
  for (int vertex : tally.buildkit_steps) {
    if (tally.buildkit_cached.count(vertex) != 0) {
      ++out.hits;
    } else {
      ++out.misses;
    }
  }
  return out;
}

void CacheStepCounter::Line(std::string_view text, Tally* tally) {
  // buildah: "[1/2] STEP 2/3: COPY a /a" and "--> Using cache 929b33d3...".
  static const std::regex kBuildahStep(R"(^(\[\d+/\d+\] )?STEP \d+/\d+: (.*)$)");
  // BuildKit: "#6 [2/3] RUN ...", "#7 [build 1/2] FROM ...", "#6 CACHED". Vertex numbers
  // are short; a longer one is not BuildKit's (and would not fit an int).
  static const std::regex kBuildkitStep(R"(^#(\d{1,9}) \[([^\]]* )?\d+/\d+\] (.*)$)");
  static const std::regex kBuildkitCached(R"(^#(\d{1,9}) CACHED$)");
  std::string line(text);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  std::smatch m;
  if (line.rfind("--> Using cache ", 0) == 0) {
    ++tally->buildah_cached;
  } else if (std::regex_match(line, m, kBuildahStep)) {
    if (!IsFrom(m[2].str())) ++tally->buildah_steps;
  } else if (std::regex_match(line, m, kBuildkitStep)) {
    if (!IsFrom(m[3].str())) tally->buildkit_steps.insert(std::stoi(m[1].str()));
  } else if (std::regex_match(line, m, kBuildkitCached)) {
    tally->buildkit_cached.insert(std::stoi(m[1].str()));
  }
}

}  // namespace manifold
