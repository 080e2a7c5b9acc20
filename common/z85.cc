#include "common/z85.h"

#include <array>
#include <cstdint>

namespace manifold {
namespace {

constexpr std::string_view kAlphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
constexpr uint8_t kInvalid = 0xff;

constexpr std::array<uint8_t, 256> DecodeTable() {
  std::array<uint8_t, 256> table{};
  table.fill(kInvalid);
  for (size_t i = 0; i < kAlphabet.size(); ++i) {
    table[static_cast<uint8_t>(kAlphabet[i])] = static_cast<uint8_t>(i);
  }
  return table;
}
constexpr std::array<uint8_t, 256> kDecode = DecodeTable();

}  // namespace

std::string Z85Encode(std::string_view bytes) {
  std::string text;
  text.reserve(bytes.size() / 4 * 5);
  for (size_t at = 0; at + 4 <= bytes.size(); at += 4) {
    uint32_t value = 0;
    for (size_t i = 0; i < 4; ++i) value = value << 8 | static_cast<uint8_t>(bytes[at + i]);
    char group[5];
    for (int i = 4; i >= 0; --i) {
      group[i] = kAlphabet[value % 85];
      value /= 85;
    }
    text.append(group, sizeof group);
  }
  return text;
}

std::optional<std::string> Z85Decode(std::string_view text) {
  if (text.size() % 5 != 0) return std::nullopt;
  std::string bytes;
  bytes.reserve(text.size() / 5 * 4);
  for (size_t at = 0; at < text.size(); at += 5) {
    uint64_t value = 0;
    for (size_t i = 0; i < 5; ++i) {
      uint8_t digit = kDecode[static_cast<uint8_t>(text[at + i])];
      if (digit == kInvalid) return std::nullopt;
      value = value * 85 + digit;
    }
    if (value > UINT32_MAX) return std::nullopt;  // "%%%%%" and the like
    for (int shift = 24; shift >= 0; shift -= 8) {
      bytes.push_back(static_cast<char>(value >> shift & 0xff));
    }
  }
  return bytes;
}

}  // namespace manifold
