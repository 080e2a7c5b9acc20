// RegistryTls: the TLS identity and trust for one registry, laid out as docker's certs.d.
//
// CERTS_DIR/HOST[:PORT]/ holds the registry's own CAs (every *.crt, added to the system's)
// and a client identity for mutual TLS (a *.cert with the *.key beside it). A registry with
// such a directory speaks TLS even on a loopback address. When a handshake fails, Explain
// turns OpenSSL's reason into what to do about it: the CA to trust, the client
// certificate to present, or the insecure-registry setting.
//
// Thread-safety: immutable after construction; every method may be called from several
// threads at once.
#pragma once

#include <string>

#include "common/http_client.h"
#include "common/status.h"

namespace manifold {

class RegistryTls {
 public:
  // Reads CERTS_DIR/HOST/ (nothing when certs_dir is empty or has no such directory).
  RegistryTls(std::string host, std::string certs_dir);

  // Whether the registry has a certs.d directory (so it is spoken to over TLS).
  bool has_certs_dir() const { return has_certs_dir_; }
  // Why the certs.d directory could not be used, if it could not: every request fails so.
  const Status& status() const { return status_; }

  // Sets the extra CAs and the client certificate and key on a request.
  void Apply(HttpRequest* request) const;

  // A non-retryable transport failure with what to do about it when TLS caused it: the
  // CA to trust, the client certificate to present, or the insecure-registry setting.
  Status Explain(const Status& failure) const;

 private:
  std::string host_;
  std::string certs_dir_;
  bool has_certs_dir_ = false;
  std::string extra_ca_pem_;
  std::string client_cert_;
  std::string client_key_;
  Status status_;
};

// A connection that broke during the TLS handshake or right after it (curl's "SSL connect
// error", "Failed sending data to the peer", "Failure when receiving data from the peer"),
// rather than a refused connection, a DNS failure or a timeout.
bool IsTlsSessionFailure(const Status& failure);

}  // namespace manifold
