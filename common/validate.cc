#include "common/validate.h"

#include <algorithm>
#include <string>

namespace manifold {
namespace {

bool IsLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAsciiAlnum(char c) { return IsLetter(c) || IsDigit(c); }

// The value as it appears in a message: quoted, cut to 64 bytes, control bytes escaped.
std::string Quoted(std::string_view value) {
  constexpr size_t kShown = 64;
  std::string out = "\"";
  for (char c : value.substr(0, kShown)) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[(c >> 4) & 0xf];
      out += kHex[c & 0xf];
    } else {
      out += c;
    }
  }
  out += value.size() > kShown ? "...\"" : "\"";
  return out;
}

Status Invalid(std::string_view field, const std::string& why) {
  return Status::InvalidArgument("field \"" + std::string(field) + "\": " + why);
}

// The first byte of `text` that `allowed(byte, position)` refuses, or npos.
template <typename Allowed>
size_t FirstRefused(std::string_view text, Allowed allowed) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (!allowed(text[i], i)) return i;
  }
  return std::string_view::npos;
}

// The length of the well-formed UTF-8 sequence at text[at], or 0.
size_t Utf8SequenceLength(std::string_view text, size_t at) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  unsigned char lead = byte(at);
  if (lead < 0x80) return 1;
  size_t length;
  uint32_t min;
  uint32_t code;
  if ((lead & 0xe0) == 0xc0) {
    length = 2, min = 0x80, code = lead & 0x1f;
  } else if ((lead & 0xf0) == 0xe0) {
    length = 3, min = 0x800, code = lead & 0x0f;
  } else if ((lead & 0xf8) == 0xf0) {
    length = 4, min = 0x10000, code = lead & 0x07;
  } else {
    return 0;
  }
  if (at + length > text.size()) return 0;
  for (size_t i = 1; i < length; ++i) {
    if ((byte(at + i) & 0xc0) != 0x80) return 0;
    code = (code << 6) | (byte(at + i) & 0x3f);
  }
  // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8.
  if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return 0;
  return length;
}

}  // namespace

Status ValidateBuildArgName(std::string_view field, std::string_view name) {
  if (name.empty() || name.size() > 255) {
    return Invalid(field, "the argument name " + Quoted(name) + " must be 1 to 255 characters");
  }
  size_t bad = FirstRefused(
      name, [](char c, size_t i) { return IsLetter(c) || c == '_' || (i > 0 && IsDigit(c)); });
  if (bad != std::string_view::npos) {
    return Invalid(field, "the argument name " + Quoted(name) +
                              " must be letters, digits and '_', not starting with a digit");
  }
  return Status::Ok();
}

Status ValidateLabelKey(std::string_view field, std::string_view key) {
  if (key.empty() || key.size() > 255) {
    return Invalid(field, "the key " + Quoted(key) + " must be 1 to 255 characters");
  }
  size_t bad = FirstRefused(key, [&](char c, size_t i) {
    bool edge = i == 0 || i + 1 == key.size();
    return IsAsciiAlnum(c) || (!edge && (c == '.' || c == '-' || c == '_' || c == '/'));
  });
  if (bad != std::string_view::npos) {
    return Invalid(field, "the key " + Quoted(key) +
                              " must be letters, digits, '.', '-', '_' and '/', starting and "
                              "ending with a letter or digit (e.g. org.opencontainers.image."
                              "source)");
  }
  return Status::Ok();
}

Status ValidateStageName(std::string_view field, std::string_view name) {
  if (name.empty() || name.size() > 128) {
    return Invalid(field, "the stage name " + Quoted(name) + " must be 1 to 128 characters");
  }
  size_t bad = FirstRefused(name, [](char c, size_t i) {
    return IsLetter(c) || (i > 0 && (IsDigit(c) || c == '.' || c == '-' || c == '_'));
  });
  if (bad != std::string_view::npos) {
    return Invalid(field, "the stage name " + Quoted(name) +
                              " must start with a letter and hold only letters, digits, '.', "
                              "'-' and '_' (as in FROM image AS name)");
  }
  return Status::Ok();
}

Status ValidateSecretId(std::string_view field, std::string_view id) {
  size_t bad = FirstRefused(id, [](char c, size_t i) {
    return IsLetter(c) || IsDigit(c) || (i > 0 && (c == '.' || c == '-' || c == '_'));
  });
  if (id.empty() || id.size() > 128 || bad != std::string_view::npos) {
    return Invalid(field, "the secret id " + Quoted(id) +
                              " must be 1 to 128 letters, digits, '.', '-' and '_', starting "
                              "with a letter or digit (it names /run/secrets/ID in the build)");
  }
  return Status::Ok();
}

Status ValidateText(std::string_view field, std::string_view value, size_t max_bytes) {
  if (value.size() > max_bytes) {
    return Invalid(field, "the value " + Quoted(value) + " is " + std::to_string(value.size()) +
                              " bytes; at most " + std::to_string(max_bytes) + " are allowed");
  }
  for (size_t at = 0; at < value.size();) {
    if (value[at] == '\0') {
      return Invalid(field, "the value " + Quoted(value) + " holds a NUL byte at offset " +
                                std::to_string(at));
    }
    size_t length = Utf8SequenceLength(value, at);
    if (length == 0) {
      return Invalid(field, "the value " + Quoted(value) + " is not valid UTF-8 at offset " +
                                std::to_string(at));
    }
    at += length;
  }
  return Status::Ok();
}

Result<std::string> ParseBuildNetwork(std::string_view name) {
  if (name == "default") return std::string();
  if (name == "none" || name == "host") return std::string(name);
  return Status::InvalidArgument("network " + Quoted(name) +
                                 " is not one of default, none or host (as buildx --network)");
}

Status ValidateEntitlement(std::string_view name) {
  if (name == "network.host") return Status::Ok();
  if (name == "security.insecure") {
    return Status::InvalidArgument(
        "entitlement \"security.insecure\" is not supported: build steps never run "
        "privileged here; the only entitlement is network.host");
  }
  return Status::InvalidArgument("unknown entitlement " + Quoted(name) +
                                 ": the only supported one is network.host");
}

Status CheckNetworkEntitlement(std::string_view network,
                               const std::vector<std::string>& entitlements) {
  if (network != "host" ||
      std::find(entitlements.begin(), entitlements.end(), "network.host") != entitlements.end()) {
    return Status::Ok();
  }
  return Status::InvalidArgument(
      "--network host needs the network.host entitlement: add --allow network.host to the "
      "build (\"entitlements\": [\"network.host\"] in the API); the agent must also run "
      "with --allow-insecure-entitlement network.host");
}

}  // namespace manifold
