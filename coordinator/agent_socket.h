// AgentSocket: the ZeroMQ ROUTER socket agents connect to, with CURVE and its key list,
// and a wake-up pipe so other threads can interrupt a poll.
//
// It carries frames and nothing else: it refuses plaintext on any endpoint but loopback,
// hears no more from a connection whose key was removed from the list, and reports each
// message as (routing id, CURVE key, frame) to the loop. ZeroMQ errors on our own socket
// are bugs, not input: a failed poll is logged and aborts (systemd or Kubernetes restart
// the coordinator). Thread-safety: Wake() from any thread; everything else from the loop
// thread, after Bind().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"
#include "coordinator/agent_link.h"
#include "coordinator/zap_handler.h"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace manifold {

struct AgentSocketOptions {
  std::string endpoint = "tcp://127.0.0.1:7081";
  uint64_t max_frame_bytes = 0;  // ZMQ_MAXMSGSIZE
  // CURVE: the coordinator's Z85 secret key and the file of agent public keys allowed in.
  // Both empty: plaintext, which Bind() allows only on a loopback endpoint.
  std::string curve_secret_key;
  std::string agent_keys_file;
};

class AgentSocket final : public AgentLink {
 public:
  using OnFrame = std::function<void(const std::string& routing_id, const std::string& peer_key,
                                     const std::string& frame)>;
  using OnMalformed = std::function<void(const std::string& why)>;

  explicit AgentSocket(AgentSocketOptions options);
  ~AgentSocket() override;

  Status Bind();
  // The endpoint actually bound (resolves a port of 0 / '*').
  const std::string& endpoint() const { return bound_endpoint_; }
  bool encrypted() const { return zap_ != nullptr; }

  // Waits up to `timeout` for messages and hands each (at most a bounded batch, so a flood
  // cannot starve the loop) to `on_frame`; a message of more than one frame is dropped.
  void Poll(std::chrono::milliseconds timeout, const OnFrame& on_frame,
            const OnMalformed& on_malformed);
  // Thread-safe: interrupts the current or next Poll.
  void Wake();

  // Reads the key list again; false if it could not be read (the old list stays).
  bool ReloadKeys();
  bool KeyAllowed(const std::string& public_key) const;
  const std::string& keys_file() const { return options_.agent_keys_file; }

  void Send(const std::string& routing_id, const CoordinatorMessage& message) override;
  std::string DescribeKey(const std::string& public_key) const override;

  // Closes every socket and then the context (in that order, or the context's destructor
  // waits for ever).
  void Close();

 private:
  const AgentSocketOptions options_;
  std::unique_ptr<zmq::context_t> context_;
  std::unique_ptr<zmq::socket_t> router_;
  std::unique_ptr<ZapHandler> zap_;  // null in plaintext mode
  std::unique_ptr<zmq::socket_t> wake_receiver_;
  std::mutex wake_mutex_;
  std::unique_ptr<zmq::socket_t> wake_sender_;  // guarded by wake_mutex_
  std::string bound_endpoint_;
};

}  // namespace manifold
