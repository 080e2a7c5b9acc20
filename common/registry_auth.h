// RegistryAuth: who the client is to one registry, and the Authorization header each of
// its requests carries.
//
// Authentication follows docker: credentials given to manifold, else those docker's
// config.json holds for the host (see docker_config.h), else anonymous. A registry's 401
// names a scheme in its WWW-Authenticate challenge: Basic sends the user name and password
// with every request from then on; Bearer asks the challenge's realm for a token covering
// exactly the scopes ("repository:NAME:ACTIONS") an operation needs, by GET with the
// password or by POST with an identity (OAuth2 refresh) token, and the token is cached per
// scope set until shortly before it expires. Refusals say which credentials were refused
// and how to log in; secrets never appear in a Status.
//
// Thread-safety: all methods may be called from several threads at once; the token cache
// and the Basic flag are guarded by a mutex.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/docker_config.h"
#include "common/http_client.h"
#include "common/status.h"

namespace manifold {

// The token scopes that reading and writing one repository need.
std::string PullScope(const std::string& repository);  // "repository:NAME:pull"
std::string PushScope(const std::string& repository);  // "repository:NAME:pull,push"

class RegistryAuth {
 public:
  // Sends a request to a token server (with the registry's TLS settings), and answers.
  using TokenSender = std::function<Result<HttpResponse>(HttpRequest request)>;

  // `credentials` when set, else config.json in docker_config_dir (unset:
  // DockerConfigDir()).
  RegistryAuth(std::string host, const std::optional<RegistryCredentials>& credentials,
               const std::optional<std::string>& docker_config_dir);

  // The Authorization header for a request needing the scopes `scope_key` (the scopes
  // joined by spaces), when a challenge answered earlier provides one.
  std::optional<std::string> Authorization(const std::string& scope_key) const;

  // Answers the registry's 401 challenge to `operation`: remembers Basic, or fetches a
  // Bearer token for `scopes` (plus any the challenge names) through `send` and caches it.
  Status AnswerChallenge(const std::string& challenge, const std::vector<std::string>& scopes,
                         const std::string& operation, const TokenSender& send) const;

  // The error for a 401 that came after the challenge was answered (`context` names the
  // registry and operation): whose credentials were refused, or which scopes the token
  // lacks, and what to do about it.
  Status RefusedAfterAuthenticating(const HttpResponse& response,
                                    const std::vector<std::string>& scopes,
                                    const std::string& context) const;

 private:
  struct Token {
    std::string header;  // "Bearer ..."
    std::chrono::steady_clock::time_point expires;
  };

  std::string host_;
  Status credentials_status_;       // why config.json could not be used, if it could not
  std::string credentials_source_;  // where credentials_ came from, for error messages
  std::optional<RegistryCredentials> credentials_;

  mutable std::mutex mu_;
  mutable std::map<std::string, Token> tokens_;  // by scope key; guarded by mu_
  mutable bool basic_ = false;  // the registry asked for Basic auth; guarded by mu_
};

}  // namespace manifold
