// `manifold agents`: the agents connected to the coordinator, as a table.
//
// The formatter is separate from the command so the text is tested without a server.
// Output goes to `out`, one-line errors to `err`; the command returns the process exit
// code (0, or 1 when the coordinator could not answer).
//
// Thread-safety: plain functions that touch only their arguments.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "cli/api_client.h"

namespace manifold {

// A table of connected agents: platforms (native or emulated), slots used, state.
std::string FormatAgentList(const std::vector<AgentInfo>& agents);

int RunAgents(const std::string& server, std::ostream* out, std::ostream* err);

}  // namespace manifold
