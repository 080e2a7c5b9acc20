#include "coordinator/agent_socket.h"

#include <spdlog/spdlog.h>

#include <random>
#include <zmq.hpp>

#include "common/curve_support.h"
#include "common/wire.h"
#include "coordinator/listen_address.h"

namespace manifold {

AgentSocket::AgentSocket(AgentSocketOptions options) : options_(std::move(options)) {}

AgentSocket::~AgentSocket() { Close(); }

Status AgentSocket::Bind() {
  context_ = std::make_unique<zmq::context_t>(1);
  // Each received message gets a buffer of its own instead of pointing into its
  // connection's shared 8 KiB read buffer (ZMQ_ZERO_COPY_RECV: 10 in libzmq 4.3, declared
  // only in its draft API). Those buffers are allocated by libzmq's I/O thread and freed by
  // this one, and with thousands of agents the pattern fragmented the heap: the RSS crept
  // up with every heartbeat (docs/BENCHMARKS.md, "Fleet size"). Agents' messages are small,
  // so the copy does not show.
  constexpr int kZeroCopyRecv = 10;
  if (zmq_ctx_set(context_->handle(), kZeroCopyRecv, 0) != 0) {
    spdlog::warn(
        "this libzmq refuses ZMQ_ZERO_COPY_RECV ({}): the coordinator's memory may "
        "grow with the messages its agents send",
        zmq_strerror(zmq_errno()));
  }
  router_ = std::make_unique<zmq::socket_t>(*context_, zmq::socket_type::router);
  router_->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(options_.max_frame_bytes));
  router_->set(zmq::sockopt::linger, 0);
  if (!options_.curve_secret_key.empty()) {
    if (Status curve = RequireCurveSupport(); !curve.ok()) return curve;
    zap_ = std::make_unique<ZapHandler>(options_.agent_keys_file);
    if (Status started = zap_->Start(*context_); !started.ok()) return started;
    router_->set(zmq::sockopt::curve_server, true);
    router_->set(zmq::sockopt::curve_secretkey, options_.curve_secret_key);
    router_->set(zmq::sockopt::zap_domain, "manifold");
  } else if (!IsLoopbackEndpoint(options_.endpoint)) {
    return Status::FailedPrecondition(
        "refusing plaintext agent connections on " + options_.endpoint +
        ": give agents CURVE keys (--curve-secret-key and --agent-keys; make keys with "
        "`manifold keygen`), or listen on 127.0.0.1 for development");
  } else {
    spdlog::warn(
        "*** PLAINTEXT AGENT LINK on {}: no encryption, any local process may act as an "
        "agent. For development only; set --curve-secret-key and --agent-keys. ***",
        options_.endpoint);
  }
  try {
    router_->bind(options_.endpoint);
  } catch (const zmq::error_t& e) {
    return Status::FailedPrecondition("cannot listen for agents on " + options_.endpoint + ": " +
                                      e.what());
  }
  bound_endpoint_ = router_->get(zmq::sockopt::last_endpoint);
  wake_receiver_ = std::make_unique<zmq::socket_t>(*context_, zmq::socket_type::pair);
  wake_sender_ = std::make_unique<zmq::socket_t>(*context_, zmq::socket_type::pair);
  // The address is private to this context; the random part only keeps two sockets of one
  // process apart.
  std::string wake_endpoint = "inproc://wake-" + std::to_string(std::random_device{}());
  wake_receiver_->bind(wake_endpoint);
  wake_sender_->connect(wake_endpoint);
  return Status::Ok();
}

void AgentSocket::Poll(std::chrono::milliseconds timeout, const OnFrame& on_frame,
                       const OnMalformed& on_malformed) {
  zmq::pollitem_t items[] = {{router_->handle(), 0, ZMQ_POLLIN, 0},
                             {wake_receiver_->handle(), 0, ZMQ_POLLIN, 0},
                             {zap_ ? zap_->socket().handle() : nullptr, 0, ZMQ_POLLIN, 0}};
  try {
    zmq::poll(items, zap_ ? 3 : 2, timeout);
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return;
    spdlog::critical("agent socket poll failed: {}", e.what());
    std::abort();  // the socket is ours; a failure here is a bug, not input
  }
  if (zap_ && (items[2].revents & ZMQ_POLLIN)) zap_->HandleRequests();
  if (items[1].revents & ZMQ_POLLIN) {
    zmq::message_t ignored;
    while (wake_receiver_->recv(ignored, zmq::recv_flags::dontwait)) {
    }
  }
  for (int i = 0; i < 1000 && (items[0].revents & ZMQ_POLLIN); ++i) {
    zmq::message_t routing_id;
    if (!router_->recv(routing_id, zmq::recv_flags::dontwait)) break;
    std::vector<zmq::message_t> parts;
    while (router_->get(zmq::sockopt::rcvmore)) {
      zmq::message_t part;
      if (!router_->recv(part, zmq::recv_flags::dontwait)) break;
      parts.push_back(std::move(part));
    }
    if (parts.size() != 1) {
      on_malformed("a message of " + std::to_string(parts.size()) + " frames (expected 1)");
      continue;
    }
    std::string peer_key;
    if (zap_) {
      // The ZAP handler made the key the connection's User-Id. A connection whose key
      // was removed from the list since its handshake is heard no more.
      const char* key = nullptr;
      try {
        key = parts[0].gets("User-Id");
      } catch (const zmq::error_t&) {
      }
      peer_key = key != nullptr ? key : "";
      if (!zap_->Allowed(peer_key)) continue;
    }
    on_frame(routing_id.to_string(), peer_key, parts[0].to_string());
  }
}

void AgentSocket::Wake() {
  std::lock_guard lock(wake_mutex_);
  if (wake_sender_) wake_sender_->send(zmq::str_buffer("w"), zmq::send_flags::dontwait);
}

bool AgentSocket::ReloadKeys() { return zap_ && zap_->Reload().ok(); }

bool AgentSocket::KeyAllowed(const std::string& public_key) const {
  return !zap_ || zap_->Allowed(public_key);
}

void AgentSocket::Send(const std::string& routing_id, const CoordinatorMessage& message) {
  std::string frame = EncodeCoordinatorMessage(message);
  router_->send(zmq::buffer(routing_id), zmq::send_flags::sndmore);
  router_->send(zmq::buffer(frame), zmq::send_flags::dontwait);
}

std::string AgentSocket::DescribeKey(const std::string& public_key) const {
  return zap_ ? zap_->Describe(public_key) : "";
}

void AgentSocket::Close() {
  {
    std::lock_guard lock(wake_mutex_);
    wake_sender_.reset();
  }
  wake_receiver_.reset();
  router_.reset();
  zap_.reset();  // its socket too, before the context
  context_.reset();
}

}  // namespace manifold
