// WithConnectionDeadlines: the database URL the coordinator connects with, with libpq's
// timeouts and TCP keepalives added where the operator set none.
//
// libpq waits for an answer without any limit. A database host that vanishes mid-query
// (a failover, a partition, a dropped NAT entry) would then hang the agent loop's thread
// forever, and with it every build; these settings turn that into a broken connection,
// which the store already handles (retry, read back an in-doubt COMMIT). A parameter the
// URL already has is left as it is. Pure function, thread-safe.
#pragma once

#include <string>

namespace manifold {

// Both libpq forms: a URI (postgresql://...?k=v) and keyword/value pairs (host=... k=v).
std::string WithConnectionDeadlines(const std::string& url);

}  // namespace manifold
