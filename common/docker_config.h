// Docker's config.json: the registry credentials every container tool shares.
//
// `docker login` (and `manifold login`) store credentials in DIR/config.json, where DIR is
// $DOCKER_CONFIG or ~/.docker, under "auths": {"HOST": {"auth": base64("user:password")}} or
// {"identitytoken": "..."} for registries that issue OAuth2 refresh tokens. manifold reads
// the same file so that an agent or CI runner already logged in with docker needs nothing
// else, and writes it the way docker does (other keys kept, mode 0600, replaced atomically).
// Credentials are never logged: nothing here puts a secret into a Status message.
//
// Thread-safety: plain functions; concurrent writers of the same file race like two
// `docker login` runs do (the last rename wins, the file is never half-written).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace manifold {

struct RegistryCredentials {
  std::string username;
  std::string password;        // empty when identity_token is used
  std::string identity_token;  // an OAuth2 refresh token ("identitytoken")
};

// $DOCKER_CONFIG when set and non-empty, else $HOME/.docker; "" when neither is known.
// `getenv` is injectable for tests.
std::string DockerConfigDir(const std::function<const char*(const char*)>& getenv =
                                [](const char* name) {
                                  return static_cast<const char*>(std::getenv(name));
                                });

// The key config.json uses for a registry: docker.io (and its aliases) is stored as
// "https://index.docker.io/v1/", every other host as itself.
std::string DockerConfigKey(std::string_view registry);

// Base64 (standard alphabet, padded), used by config.json's "auth" and by HTTP Basic.
std::string Base64Encode(std::string_view bytes);
std::optional<std::string> Base64Decode(std::string_view text);

// The credentials config.json in `config_dir` holds for `registry` ("host[:port]"), looked
// up under the host itself and under the "https://host", "http://host" and "host/v1/"
// spellings older clients wrote. nullopt when the file or the entry does not exist (use
// anonymous access). An error when the file is malformed, or when the registry's
// credentials live in a credential helper (credsStore / credHelpers), which manifold does
// not run: the message says to use `manifold login` instead.
Result<std::optional<RegistryCredentials>> LoadRegistryCredentials(const std::string& config_dir,
                                                                   std::string_view registry);

// Stores user:password for `registry` in config_dir/config.json as `docker login` does,
// keeping every other entry and key, creating the directory (0700) when needed and
// writing the file with mode 0600.
Status StoreRegistryCredentials(const std::string& config_dir, std::string_view registry,
                                std::string_view username, std::string_view password);

}  // namespace manifold
