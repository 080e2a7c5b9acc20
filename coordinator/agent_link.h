// AgentLink: how the loop reaches connected agents.
//
// The loop decides; the link carries. In the farm it is the ZeroMQ ROUTER socket
// (coordinator/agent_socket.h); the loop's unit tests record what would have been sent.
// Called from the loop thread only.
#pragma once

#include <string>

#include "common/messages.h"

namespace manifold {

class AgentLink {
 public:
  virtual ~AgentLink() = default;
  // Sends to the connection `routing_id`; a message for a connection that is gone is lost,
  // which the protocol tolerates (agents resend, the coordinator re-decides).
  virtual void Send(const std::string& routing_id, const CoordinatorMessage& message) = 0;
  // How logs name the CURVE key an agent connected with; "" on a plaintext link.
  virtual std::string DescribeKey(const std::string& public_key) const = 0;
};

}  // namespace manifold
