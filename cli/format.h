// Text helpers the CLI's commands share: tables, durations, ages, the coordinator's
// timestamps, and the one error line a failed command prints.
//
// Thread-safety: plain functions that touch only their arguments.
#pragma once

#include <chrono>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "common/status.h"

namespace manifold {

// Left-aligned columns two spaces apart, as `docker ps` prints them. rows[0] is the header
// (there must be one) and sets the number of columns.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows);

// A span as people read it: "42s", "3m05s", "2h07m".
std::string FormatDuration(std::chrono::seconds span);
// An age in its largest whole unit, as kubectl prints it ("45s", "12m", "3h", "2d").
std::string FormatAge(std::chrono::seconds age);
// The coordinator's timestamps ("2026-11-29T03:00:00Z"); nullopt if `text` is not one.
std::optional<std::chrono::system_clock::time_point> ParseTimestamp(const std::string& text);

// Prints "manifold: <message>" on `err` and returns 1, the exit code of a failed command.
int PrintFailure(std::ostream* err, const Status& status);

}  // namespace manifold
