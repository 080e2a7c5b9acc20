// RegistryServer: a real distribution registry (`docker-registry serve`) for one test.
//
// It listens on 127.0.0.1 (or another address of this machine) at a free port, keeps its storage
// and log in its own temporary directory, and is stopped (and its files removed) when the object
// goes away. It can serve HTTPS and require htpasswd (Basic) or token (Bearer) authentication.
// Tests push to it with manifold's client and read back with independent tools (skopeo). Used from
// one thread.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tls_certs.h"

namespace manifold::test {

struct RegistryServerOptions {
  // Contents of an htpasswd file (bcrypt entries). When set, the registry requires HTTP
  // basic authentication against it for every request.
  std::string htpasswd;
  // PEM certificate and key: when set, the registry serves HTTPS with them.
  std::string tls_cert_file;
  std::string tls_key_file;
  // PEM CA certificate: when set (with TLS), the registry requires every client to present
  // a certificate signed by it (mutual TLS, `http.tls.clientcas`).
  std::string tls_client_ca_file;
  // The address to listen on. Another address of this machine (not loopback) lets a test
  // reach the registry under a name clients do not treat as insecure by default.
  std::string bind_address = "127.0.0.1";
  // When token_realm is set, the registry requires Bearer tokens from that realm, signed
  // by a key whose certificate chains to token_root_cert_file (Docker token auth).
  std::string token_realm;
  std::string token_service;
  std::string token_issuer;
  std::string token_root_cert_file;
};

class RegistryServer {
 public:
  RegistryServer() = default;
  ~RegistryServer();  // Stop()
  RegistryServer(const RegistryServer&) = delete;
  RegistryServer& operator=(const RegistryServer&) = delete;

  // Starts the registry and waits (at most 15 s) until GET /v2/ answers. A port taken by
  // someone else between choosing and binding it is retried with another one. The error
  // carries the end of the registry's log.
  Status Start(const RegistryServerOptions& options = {});
  void Stop();
  // Stops the registry and starts it again on the same port with the same storage (and
  // the same upload-state secret, so upload sessions survive), waiting as Start does.
  Status Restart();

  // "BIND_ADDRESS:PORT", e.g. "127.0.0.1:5000".
  std::string host() const;
  int port() const { return port_; }
  // Where the registry keeps its blobs and repositories.
  std::string storage_dir() const;
  std::string LogTail(size_t max_bytes = 4096) const { return process_.LogTail(max_bytes); }

 private:
  Status Launch();  // starts on port_ with the written config and waits for /v2/

  std::unique_ptr<TempDir> dir_;
  RegistryServerOptions options_;
  Subprocess process_;
  int port_ = -1;
};

// Makes a test CA and a server certificate signed by it under DIR and starts `registry` over
// HTTPS with them; `options` adds the rest (htpasswd, tokens). With
// require_client_certificate the registry also requires client certificates from that CA.
// Returns the CA, whose certificate goes into a client's certs.d as ca.crt.
Result<TestCertificate> StartTlsRegistry(RegistryServer* registry, const std::string& dir,
                                         RegistryServerOptions options,
                                         bool require_client_certificate = false);

}  // namespace manifold::test
