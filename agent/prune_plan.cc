#include "agent/prune_plan.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "agent/job_policy.h"

namespace manifold {

bool OverGoal(const DiskGoal& goal, uint64_t used_bytes, uint64_t free_bytes) {
  return (goal.max_bytes != 0 && used_bytes > goal.max_bytes) ||
         (goal.min_free_bytes != 0 && free_bytes < goal.min_free_bytes);
}

std::vector<std::string> PickImagesToPrune(const std::vector<StoredImage>& images,
                                           const std::set<std::string>& in_use, uint64_t used_bytes,
                                           uint64_t free_bytes, const DiskGoal& goal) {
  std::vector<const StoredImage*> candidates;
  for (const StoredImage& image : images) {
    if (in_use.count(image.id) == 0) candidates.push_back(&image);
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const StoredImage* a, const StoredImage* b) {
                     if (a->names.empty() != b->names.empty()) return a->names.empty();
                     return a->last_used < b->last_used;
                   });
  std::vector<std::string> picked;
  for (const StoredImage* image : candidates) {
    if (!OverGoal(goal, used_bytes, free_bytes)) break;
    picked.push_back(image->id);
    used_bytes -= std::min(used_bytes, image->bytes);
    free_bytes += image->bytes;
  }
  return picked;
}

Result<DiskFloor> ParseDiskFloor(std::string_view text) {
  DiskFloor floor;
  if (!text.empty() && text.back() == '%') {
    std::string_view digits = text.substr(0, text.size() - 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), floor.percent);
    if (ec != std::errc() || end != digits.data() + digits.size() || floor.percent > 99) {
      return Status::InvalidArgument("'" + std::string(text) +
                                     "' is not a share of the disk: use 0% to 99%, or a size "
                                     "such as 5g");
    }
    return floor;
  }
  Result<uint64_t> bytes = ParseByteSize(text);
  if (!bytes.ok()) return bytes.status();
  floor.bytes = *bytes;
  return floor;
}

uint64_t FloorBytes(const DiskFloor& floor, uint64_t total_bytes) {
  if (floor.percent != 0) return total_bytes / 100 * floor.percent;
  return floor.bytes;
}

std::string DescribeFloor(const DiskFloor& floor) {
  if (floor.percent != 0) return std::to_string(floor.percent) + "% of the disk";
  return FormatBytes(floor.bytes);
}

Result<uint64_t> ParseDecimalSize(std::string_view text) {
  static constexpr std::array<std::string_view, 6> kUnits = {"B", "kB", "MB", "GB", "TB", "PB"};
  std::string number(text.substr(0, text.find(' ')));
  std::string_view unit =
      number.size() < text.size() ? text.substr(number.size() + 1) : std::string_view("B");
  auto at = std::find(kUnits.begin(), kUnits.end(), unit);
  char* end = nullptr;
  double value = std::strtod(number.c_str(), &end);
  if (number.empty() || end != number.c_str() + number.size() || at == kUnits.end() ||
      !(value >= 0)) {
    return Status::InvalidArgument("'" + std::string(text) + "' is not a size buildah prints");
  }
  return static_cast<uint64_t>(
      std::llround(value * std::pow(1000.0, static_cast<double>(at - kUnits.begin()))));
}

}  // namespace manifold
