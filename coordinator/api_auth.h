// API authentication: bearer tokens for clients and context grants for agents.
//
// A token is "mf_<id>_<secret>": the id (16 hex digits) finds the token's row, and the
// sha256 of the whole token is compared with the stored one in constant time; the token
// itself is never stored. Agents fetch build contexts with a grant instead, an HMAC of
// the context digest under a key that the coordinators of one database share through it
// (drawn by the first to start) and that travels inside assignments over the
// (CURVE-encrypted) agent link, so a grant holds at whichever coordinator serves it. ApiAuth::Check
// decides one request. Thread-safe: the key is fixed after construction and the Store is
// thread-safe.
#pragma once

#include <string>

#include "common/status.h"
#include "coordinator/store.h"

namespace manifold {

struct NewApiToken {
  std::string id;
  std::string token;  // shown to the user once
  std::string hash;   // what the store keeps: hex sha256 of `token`
};

// A fresh random token.
Result<NewApiToken> MakeApiToken();

struct ApiAuthOptions {
  bool required = true;
  bool open_probes = true;  // /healthz and /readyz answer without a token
};

// The grant key the coordinators of `store`'s database share: a fresh random one unless
// one is stored already.
Result<std::string> SharedContextGrantKey(Store& store);

class ApiAuth {
 public:
  ApiAuth(Store& store, ApiAuthOptions options, std::string grant_key);

  bool required() const { return options_.required; }

  // Whether a request may proceed: http_status 0 if so, else 401 (no valid token) or 503
  // (the store is away), with the message for the JSON error body. `query_grant` is the
  // request's ?grant= parameter, "" if none.
  struct Decision {
    int http_status = 0;
    std::string error;
  };
  Decision Check(const std::string& method, const std::string& path,
                 const std::string& authorization_header, const std::string& query_grant) const;

  // "?grant=<hex HMAC>" for a context URL, so an agent may fetch that context.
  std::string ContextUrlQuery(const std::string& digest) const;

 private:
  std::string Grant(const std::string& digest) const;
  Decision CheckToken(const std::string& token) const;

  Store& store_;
  const ApiAuthOptions options_;
  std::string grant_key_;
};

}  // namespace manifold
