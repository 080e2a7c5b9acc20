// Z85, the text encoding ZeroMQ uses for CURVE keys (ZeroMQ RFC 32): four bytes become five
// printable characters. Keys are 32 bytes, so 40 characters. Implemented here rather than
// taken from libzmq so that programs that only read or make keys (the CLI) need no libzmq.
// Free functions, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace manifold {

// BYTES must be a multiple of four long (the caller's keys always are).
std::string Z85Encode(std::string_view bytes);

// The bytes TEXT encodes, or nullopt if TEXT is not a multiple of five long, has a
// character outside the alphabet, or a group whose value does not fit in four bytes.
std::optional<std::string> Z85Decode(std::string_view text);

}  // namespace manifold
