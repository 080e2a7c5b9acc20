// Api: the coordinator's HTTP/JSON interface under /v1 (see docs/API.md).
//
// Validates every field of a request at the boundary and answers 400 with a message that
// names the field, so nothing malformed reaches the store or the agents. Handlers run on
// cpp-httplib's worker threads and use only thread-safe collaborators (Store,
// ContextStore, BuildQueue).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "common/status.h"
#include "coordinator/api_auth.h"
#include "coordinator/build_queue.h"
#include "coordinator/context_store.h"
#include "coordinator/store.h"

namespace httplib {
class Server;
}

namespace manifold {

struct ApiOptions {
  std::string listen_host = "127.0.0.1";
  int listen_port = 7080;  // 0 picks a free port
  uint64_t max_context_bytes = 2ull << 30;
  uint64_t max_request_bytes = 4u << 20;  // everything but context uploads
  // Who may call (not owned); null: everyone.
  const ApiAuth* auth = nullptr;
  // Both set: HTTPS with this PEM certificate (chain) and key.
  std::string tls_cert_file;
  std::string tls_key_file;
  // The coordinator's --retention, to say why a deleted build is not found (0: forever).
  std::chrono::seconds retention{0};
  // Its --leader-name: GET /v1/agents says the agents are on it (the leader).
  std::string coordinator_name;
};

class Api {
 public:
  Api(Store& store, ContextStore& contexts, BuildQueue& queue, ApiOptions options);
  ~Api();

  // Binds and starts serving on a background thread.
  Status Start();
  void Stop();
  int port() const { return port_; }

 private:
  void Routes();
  // GetBuild, whose NotFound says so when the build was deleted under the retention.
  Result<BuildRecord> FindBuild(uint64_t id);

  Store& store_;
  ContextStore& contexts_;
  BuildQueue& queue_;
  ApiOptions options_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace manifold
