// RegistryServer: a real distribution registry (`docker-registry serve`) for one test.
//
// It listens on 127.0.0.1 at a free port, keeps its storage and log in its own temporary
// directory, and is stopped (and its files removed) when the object goes away. Tests push
// to it with manifold's client and read back with independent tools (skopeo). Used from
// one thread.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace manifold::test {

struct RegistryServerOptions {
  // Contents of an htpasswd file (bcrypt entries). When set, the registry requires HTTP
  // basic authentication against it for every request.
  std::string htpasswd;
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

  // "127.0.0.1:PORT".
  std::string host() const;
  int port() const { return port_; }
  // Where the registry keeps its blobs and repositories.
  std::string storage_dir() const;
  std::string LogTail(size_t max_bytes = 4096) const { return process_.LogTail(max_bytes); }

 private:
  std::unique_ptr<TempDir> dir_;
  Subprocess process_;
  int port_ = -1;
};

}  // namespace manifold::test
