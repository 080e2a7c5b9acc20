// `manifold login REGISTRY -u USER --password-stdin`: checks the credentials against the
// registry and stores them in docker's config.json, as `docker login` does, so that the
// CLI, agents on the same host and every other container tool find them there.
//
// The password is read from a stream (never from the command line, where `ps` shows it)
// and is never printed. Thread-safety: plain functions that touch only their arguments and
// the config file.
#pragma once

#include <istream>
#include <ostream>
#include <string>

#include "common/registry.h"

namespace manifold {

struct LoginOptions {
  std::string registry;  // "host[:port]", or a reference-like "https://host/"
  std::string username;
  std::string config_dir;            // where config.json goes; "" means DockerConfigDir()
  RegistryOptions registry_options;  // TLS, insecure registries (credentials are ignored)
};

// Reads the password from `password_in` (one line; the trailing newline is dropped),
// verifies it with RegistryClient::CheckAccess and stores it. Returns the exit code and
// prints "Login Succeeded" on *out or a one-line error on *err.
int RunLogin(const LoginOptions& options, std::istream* password_in, std::ostream* out,
             std::ostream* err);

}  // namespace manifold
