#include "common/resource_units.h"

#include <cctype>
#include <limits>
#include <string>

namespace manifold {
namespace {

// A non-negative decimal "DIGITS[.DIGITS]" at the start of `text`, as a whole part and a
// fraction in units of 10^-max_fraction_digits; `*used` is how many bytes it took. False if
// there is no number, it overflows, or its fraction has more than max_fraction_digits.
bool ParseDecimal(std::string_view text, int max_fraction_digits, uint64_t* whole,
                  uint64_t* fraction, size_t* used) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  size_t i = 0;
  *whole = 0;
  for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
    uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (*whole > (kMax - digit) / 10) return false;
    *whole = *whole * 10 + digit;
  }
  if (i == 0) return false;
  *fraction = 0;
  int digits = 0;
  if (i < text.size() && text[i] == '.') {
    size_t start = ++i;
    for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
      if (++digits > max_fraction_digits) return false;
      *fraction = *fraction * 10 + static_cast<uint64_t>(text[i] - '0');
    }
    if (i == start) return false;
  }
  for (; digits < max_fraction_digits; ++digits) *fraction *= 10;
  *used = i;
  return true;
}

Status Refused(std::string_view flag, std::string_view text, const char* what) {
  return Status::InvalidArgument(std::string(flag) + " \"" + std::string(text).substr(0, 64) +
                                 "\" is not " + what);
}

}  // namespace

Result<uint64_t> ParseByteSize(std::string_view flag, std::string_view text) {
  constexpr const char* kWhat =
      "a size: write bytes or a number with k, m, g, t or p (binary units, as docker's), e.g. "
      "512m or 1.5g";
  // Up to nine fraction digits, far more than sizes are written with; more are refused.
  constexpr int kFractionDigits = 9;
  constexpr uint64_t kFractionScale = 1000000000;
  uint64_t whole = 0, fraction = 0;
  size_t used = 0;
  if (!ParseDecimal(text, kFractionDigits, &whole, &fraction, &used)) {
    return Refused(flag, text, kWhat);
  }
  std::string unit;
  for (char c : text.substr(used))
    unit += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  int shift = 0;
  if (!unit.empty() && unit != "b") {
    static constexpr std::string_view kUnits = "kmgtp";
    size_t power = kUnits.find(unit[0]);
    std::string_view rest = std::string_view(unit).substr(1);
    if (power == std::string_view::npos || !(rest.empty() || rest == "b" || rest == "ib")) {
      return Refused(flag, text, kWhat);
    }
    shift = 10 * static_cast<int>(power + 1);
  }
  if (shift > 0 && whole > (std::numeric_limits<uint64_t>::max() >> shift)) {
    return Refused(flag, text, "a size this machine can count in bytes");
  }
  // fraction < 10^9 and shift <= 50, so the product needs 128 bits but the result is
  // less than 2^shift.
  uint64_t fraction_bytes =
      static_cast<uint64_t>((static_cast<unsigned __int128>(fraction) << shift) / kFractionScale);
  uint64_t bytes = whole << shift;
  if (bytes > std::numeric_limits<uint64_t>::max() - fraction_bytes) {
    return Refused(flag, text, "a size this machine can count in bytes");
  }
  return bytes + fraction_bytes;
}

Result<uint64_t> ParseCpuMillis(std::string_view flag, std::string_view text) {
  uint64_t whole = 0, millis = 0;
  size_t used = 0;
  if (!ParseDecimal(text, 3, &whole, &millis, &used) || used != text.size() ||
      whole > std::numeric_limits<uint64_t>::max() / 1000 - 1) {
    return Refused(flag, text,
                   "a number of CPUs: a decimal with at most three places, e.g. 2 or 1.5");
  }
  return whole * 1000 + millis;
}

}  // namespace manifold
