// Whether the libzmq a program is linked with can encrypt its sockets with CURVE. Only a
// header, so that common/ itself needs no libzmq: the programs that open the agent link
// (coordinator, agent) include it and link libzmq; the CLI does neither.
#pragma once

#include <zmq.h>

#include "common/status.h"

namespace manifold {

// OK if libzmq was built with CURVE support (libsodium or its own tweetnacl).
inline Status RequireCurveSupport() {
  if (zmq_has("curve") == 1) return Status::Ok();
  return Status::FailedPrecondition(
      "this libzmq has no CURVE support; install one built with libsodium");
}

}  // namespace manifold
