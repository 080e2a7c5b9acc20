// `manifold status`, `manifold builds` (alias `ls`) and `manifold cancel`: a build's state
// read back from the coordinator, one build or the latest few, and a build canceled.
//
// The formatters are separate from the commands so the text is tested without a server.
// Output goes to `out`, one-line errors to `err`; every command returns the process exit
// code (0, or 1 when the coordinator could not answer or knows no such build).
//
// Thread-safety: plain functions that touch only their arguments.
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "cli/api_client.h"

namespace manifold {

// The build as `manifold status` prints it: state, platforms, tags, index, and one block
// per job with its state, attempt, agent, digest and error.
std::string FormatBuildStatus(const BuildInfo& build);

// `manifold builds`: one line per build, newest first as the coordinator sends them,
// under a header: id, state, platforms, tags, duration (creation to the last change for a
// final build, to `now` for one still going) and age (since creation, at `now`).
std::string FormatBuildList(const std::vector<BuildInfo>& builds,
                            std::chrono::system_clock::time_point now);

int RunStatus(const std::string& server, int64_t id, std::ostream* out, std::ostream* err);
int RunList(const std::string& server, int limit, std::ostream* out, std::ostream* err);
// Cancels a queued or running build: its jobs stop on their agents and no index is pushed.
int RunCancel(const std::string& server, int64_t id, std::ostream* out, std::ostream* err);

}  // namespace manifold
