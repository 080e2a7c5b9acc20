// Config files for manifold-coordinator and manifold-agent, as systemd units and
// Kubernetes ConfigMaps use them: `--config FILE` (or MANIFOLD_CONFIG) names a TOML file of
// `option = value` lines whose names are the program's long flags without the dashes
// (`database-url = "postgresql://..."`, `insecure-registry = ["a:5000", "b:5000"]`).
// A flag beats its environment variable, which beats the file, which beats the default:
// the file's settings reach the options through their environment variables, and only
// where those are unset, so CLI11 applies that order itself. Header only (CLI11 is, and
// only programs include this); call from main() before parsing, on one thread.
#pragma once

#include <stdlib.h>

#include <CLI/CLI.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace manifold {

constexpr char kConfigEnv[] = "MANIFOLD_CONFIG";

// The file `--config FILE`, `--config=FILE` or MANIFOLD_CONFIG names ("" if none).
inline std::string ConfigFilePath(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc) return argv[i + 1];
    if (std::strncmp(argv[i], "--config=", 9) == 0) return argv[i] + 9;
  }
  const char* env = std::getenv(kConfigEnv);
  return env != nullptr ? env : "";
}

// Reads the config file, if one is named, and sets the environment variable of every option
// it sets whose variable is not set already; their names are appended to *set, for the
// caller to unset after parsing so that child processes do not inherit them. Fails, naming
// the file, on one that cannot be read, a [table], a name that is not an option of `app`,
// or a list for an option that takes one value.
inline Status LoadConfigFile(const CLI::App& app, int argc, char** argv,
                             std::vector<std::string>* set) {
  const std::string path = ConfigFilePath(argc, argv);
  if (path.empty()) return Status::Ok();
  std::ifstream in(path);
  if (!in) {
    return Status::NotFound("cannot read the config file " + path + ": " + std::strerror(errno));
  }
  std::vector<CLI::ConfigItem> items;
  try {
    items = CLI::ConfigTOML().from_config(in);
  } catch (const CLI::ParseError& e) {
    return Status::InvalidArgument("config file " + path + ": " + e.what());
  }
  for (const CLI::ConfigItem& item : items) {
    const std::string where = "config file " + path + ": ";
    if (!item.parents.empty()) {
      return Status::InvalidArgument(where + "[" + item.parents.front() +
                                     "]: tables are not used; write `name = value` lines");
    }
    const CLI::Option* option = app.get_option_no_throw("--" + item.name);
    if (option == nullptr || option->get_envname().empty() || item.name == "config") {
      return Status::InvalidArgument(where + "\"" + item.name +
                                     "\" is not an option of this program (see --help)");
    }
    std::string value;
    for (size_t i = 0; i < item.inputs.size(); ++i) {
      if (i > 0) {
        if (option->get_delimiter() == '\0') {
          return Status::InvalidArgument(where + "\"" + item.name + "\" takes one value");
        }
        value += option->get_delimiter();
      }
      value += item.inputs[i];
    }
    const std::string& env = option->get_envname();
    if (std::getenv(env.c_str()) != nullptr) continue;  // the environment wins
    setenv(env.c_str(), value.c_str(), 1);
    set->push_back(env);
  }
  return Status::Ok();
}

// Adds --config to `app`, loads the file it names and parses the command line, as
// CLI11_PARSE does. Returns the exit code when the program should stop (--help, a bad flag
// or config file; the message printed), nullopt when it should go on.
inline std::optional<int> ParseWithConfigFile(CLI::App& app, int argc, char** argv) {
  app.add_option("--config",
                 "TOML file of `option = value` lines, named like the flags; flags and "
                 "environment variables override it")
      ->envname(kConfigEnv);
  std::vector<std::string> from_file;
  if (Status loaded = LoadConfigFile(app, argc, argv, &from_file); !loaded.ok()) {
    std::cerr << std::filesystem::path(argv[0]).filename().string() << ": " << loaded.message()
              << "\n";
    return 2;
  }
  std::optional<int> exit_code;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    exit_code = app.exit(e);
  }
  for (const std::string& name : from_file) unsetenv(name.c_str());
  return exit_code;
}

}  // namespace manifold
