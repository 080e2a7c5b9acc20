// ZapHandler: decides which agents may open a CURVE session with the coordinator.
//
// libzmq asks a ZAP handler (a REP socket on inproc://zeromq.zap.01 in the same context)
// about every CURVE handshake; this one accepts a client public key only if it is in the
// allow-list file (common/curve_keys.h), answers with the key as the session's User-Id
// (so every later frame says which key sent it), and logs a refused key's fingerprint at
// most once a minute per key. The list is replaced by Reload(), which keeps the old list
// when the file does not parse. Not thread-safe: the coordinator's loop thread owns it
// and polls socket() with its agent socket.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "common/curve_keys.h"
#include "common/status.h"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace manifold {

class ZapHandler {
 public:
  ZapHandler(std::string allow_list_file);
  ~ZapHandler();

  // Reads the allow-list and binds the ZAP endpoint; before the agent socket binds.
  Status Start(zmq::context_t& context);
  // Reads the allow-list again. On error the previous list stays in force.
  Status Reload();

  // The handler's socket, for the loop's poll; HandleRequests() when it is readable.
  zmq::socket_t& socket() { return *socket_; }
  void HandleRequests();

  bool Allowed(const std::string& public_key) const { return keys_.count(public_key) != 0; }
  // "name (SHA256:...)" or just the fingerprint when the list gives no name.
  std::string Describe(const std::string& public_key) const;
  size_t size() const { return keys_.size(); }
  const std::string& file() const { return file_; }

 private:
  const std::string file_;
  CurveAllowList keys_;
  std::unique_ptr<zmq::socket_t> socket_;
  std::map<std::string, std::chrono::steady_clock::time_point> refusals_logged_;
};

}  // namespace manifold
