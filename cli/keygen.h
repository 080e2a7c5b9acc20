// `manifold keygen PREFIX`: makes a CURVE key pair for the agent link.
//
// Writes PREFIX.key (the secret key, mode 0600) and PREFIX.pub (the public key and a name,
// one line ready to append to the coordinator's --agent-keys file); refuses to overwrite
// either. Then says where each file goes for the pair's role, the coordinator's or an
// agent's (both, labeled, when no role is given). Thread-safety: a plain function over its
// arguments and the two files.
#pragma once

#include <ostream>
#include <string>

namespace manifold {

// `name` defaults to the file name of `prefix`; `role` is "coordinator", "agent" or "" (not
// said). Returns the exit code.
int RunKeygen(const std::string& prefix, std::string name, const std::string& role,
              std::ostream* out, std::ostream* err);

}  // namespace manifold
