// Config files for manifold-coordinator and manifold-agent, as systemd units and
// Kubernetes ConfigMaps use them: `--config FILE` (or MANIFOLD_CONFIG) names a TOML file of
// `option = value` lines whose names are the program's long flags without the dashes
// (`database-url = "postgresql://..."`, `insecure-registry = ["a:5000", "b:5000"]`).
// A flag beats its environment variable, which beats the file, which beats the default:
// the file's settings reach the options through their environment variables, and only
// where those are unset, so CLI11 applies that order itself. The file is read strictly (a
// TOML parser, not CLI11's lenient reader): every mistake stops the program with the file,
// the line and the fix. Call from main() before parsing, on one thread (it sets and unsets
// environment variables).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace CLI {
class App;
}

namespace manifold {

constexpr char kConfigEnv[] = "MANIFOLD_CONFIG";

// Reads the config file that `--config FILE`, `--config=FILE` or MANIFOLD_CONFIG names, if
// any, and sets the environment variable of every option it sets whose variable is not set
// already; their names are appended to *set, for the caller to unset after parsing so that
// child processes do not inherit them. Sets nothing and fails, naming the file and line, on
// a file that cannot be read or is not TOML, a name set twice, a [table], a name that is
// not an option of `app` (suggesting the closest one), or a list for an option that takes
// one value.
Status LoadConfigFile(const CLI::App& app, int argc, char** argv, std::vector<std::string>* set);

// Adds --config to `app`, loads the file it names and parses the command line, as
// CLI11_PARSE does. Returns the exit code when the program should stop (--help, a bad flag
// or config file; the message printed), nullopt when it should go on.
std::optional<int> ParseWithConfigFile(CLI::App& app, int argc, char** argv);

}  // namespace manifold
