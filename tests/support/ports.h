// FreeTcpPort: a TCP port on 127.0.0.1 that nothing listens on right now.
//
// Services started by tests listen on such ports so that tests never collide with each
// other or with anything else on the machine. The port is free when returned; a service
// that fails to bind it because someone took it meanwhile should be retried with a new one.
// Thread-safe.
#pragma once

namespace manifold::test {

// A random port below the kernel's ephemeral range that can be bound now, so that no
// outgoing connection takes it as its source port before the service binds it. -1 if
// none was found.
int FreeTcpPort();

}  // namespace manifold::test
