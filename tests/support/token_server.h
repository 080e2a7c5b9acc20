// TokenServer: a small Docker token-auth server (the "realm" of a registry started in
// `token` auth mode), for tests of manifold's Bearer token flow.
//
// It answers GET /token?service=...&scope=... (Basic auth) with a JWT signed (RS256) by a
// test key whose certificate travels in the token's x5c header, granting each requested
// repository scope only the actions the authenticated user has. Unknown users and wrong
// passwords get 401. It also answers the OAuth2 form of the spec: POST /token with a
// form-encoded grant_type=refresh_token, refresh_token (a user's identity token), service,
// scope (space-separated) and client_id, as docker sends for an "identitytoken" from
// config.json; an unknown refresh token gets 401, a malformed request 400.
// It listens on 127.0.0.1 at a free port and serves one connection at a time on its own
// thread; Stop() (also from the destructor) joins it. Start and Stop from one thread.
#pragma once

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/status.h"

namespace manifold::test {

struct TokenUser {
  std::string password;
  std::vector<std::string> actions;  // granted on every repository: "pull", "push"
  std::string identity_token;        // the OAuth2 refresh token that stands for this user
};

class TokenServer {
 public:
  TokenServer() = default;
  ~TokenServer();  // Stop()
  TokenServer(const TokenServer&) = delete;
  TokenServer& operator=(const TokenServer&) = delete;

  // Listens and serves tokens signed with key_file (PEM RSA key) for cert_file.
  Status Start(const std::string& cert_file, const std::string& key_file, const std::string& issuer,
               const std::string& service, std::map<std::string, TokenUser> users);
  void Stop();

  // "http://127.0.0.1:PORT/token".
  std::string realm() const;
  // How many token requests were answered with a token.
  int tokens_issued() const { return tokens_issued_.load(); }
  // How many of them were for a refresh token (POST), not a password (GET).
  int refresh_grants() const { return refresh_grants_.load(); }

 private:
  void Serve();
  void Handle(int fd);
  // The answer to POST /token with this form body: status and JSON body.
  std::pair<int, std::string> RefreshGrant(const std::string& form);
  std::string IssueToken(const std::string& user, const std::vector<std::string>& scopes) const;

  std::string key_pem_;
  std::string cert_der_base64_;
  std::string issuer_;
  std::string service_;
  std::map<std::string, TokenUser> users_;
  int listen_fd_ = -1;
  int port_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> tokens_issued_{0};
  std::atomic<int> refresh_grants_{0};
  std::thread thread_;
};

}  // namespace manifold::test
