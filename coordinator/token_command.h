// `manifold-coordinator token create|list|revoke`: manage API tokens in the database.
//
// create prints the new token once (only its hash is stored); list shows names, ids and
// dates, never tokens; revoke ends a token at once for every coordinator on the database.
// Output goes to the given streams; the exit code is returned. Used from main's thread.
#pragma once

#include <ostream>
#include <string>

#include "coordinator/store.h"

namespace manifold {

struct TokenCommand {
  std::string action;  // create | list | revoke
  std::string name;    // create, revoke
};

int RunTokenCommand(Store& store, const TokenCommand& command, std::ostream* out,
                    std::ostream* err);

}  // namespace manifold
