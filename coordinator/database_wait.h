// Waiting for the database at start: the coordinator and its `token` commands may start
// before PostgreSQL answers (a host booting, a database failing over), so they try to
// connect with back-off for --database-wait (60 s) before giving up.
//
// The pauses between attempts wait on SIGINT and SIGTERM, which the caller must have
// blocked in every thread (main blocks them before it starts any), so a stop asked for
// during the wait ends it at once instead of after the whole --database-wait, by which
// time systemd's stop timeout would have killed the process. Call from one thread; it
// takes the pending stop signal, so no other thread waits for it meanwhile.
#pragma once

#include <chrono>
#include <functional>

#include "common/status.h"

namespace manifold {

// Calls `connect` until it returns Ok, pausing 100 ms, then twice as long each time up to
// 2 s, and logging its error before each pause. Returns its last error once `limit` has
// passed, or Canceled ("stopped by SIGTERM while waiting for the database: ...") when
// SIGINT or SIGTERM arrives.
Status WaitForDatabase(const std::function<Status()>& connect, std::chrono::seconds limit);

}  // namespace manifold
