// Whether an address the coordinator listens on is reachable only from this host.
//
// Development shortcuts (plaintext agent links, an API without tokens) are allowed only
// on loopback, so the checks live in one place. Pure functions, thread-safe.
#pragma once

#include <string_view>

namespace manifold {

// 127.0.0.0/8, ::1 (with or without brackets) and "localhost".
bool IsLoopbackHost(std::string_view host);

// A ZeroMQ endpoint that only local processes can reach: tcp:// on a loopback host,
// ipc:// or inproc://.
bool IsLoopbackEndpoint(std::string_view endpoint);

}  // namespace manifold
