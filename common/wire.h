// Wire form of the agent protocol: one Cap'n Proto message per ZeroMQ frame.
//
// Decoding treats every frame as hostile: it copies unaligned frames into aligned
// memory (frames from TCP usually are not 8-byte aligned), applies traversal and nesting
// limits, validates texts (no NUL bytes), platforms and digests, and converts the whole
// message into plain values before anyone acts on it. Any malformation is one
// InvalidArgument Status. Encoding writes a NUL in a string as U+FFFD, so what one side
// encodes the other always accepts.
// Stateless and thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/messages.h"
#include "common/status.h"

namespace manifold {

// Limits for frames from the network. A frame of at most max_frame_bytes cannot make the
// reader walk more than traversal_limit_words, nor more than a small multiple of its own
// size (so a small frame cannot claim a huge list of empty elements).
struct WireLimits {
  size_t max_frame_bytes = 64u << 20;
  uint64_t traversal_limit_words = 16u << 20;
  int nesting_limit = 16;
};

std::string EncodeAgentMessage(const AgentMessage& message);
Result<AgentMessage> DecodeAgentMessage(std::string_view frame, const WireLimits& limits = {});

std::string EncodeCoordinatorMessage(const CoordinatorMessage& message);
Result<CoordinatorMessage> DecodeCoordinatorMessage(std::string_view frame,
                                                    const WireLimits& limits = {});

}  // namespace manifold
