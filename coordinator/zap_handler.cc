#include "coordinator/zap_handler.h"

#include <spdlog/spdlog.h>

#include <vector>
#include <zmq.hpp>

namespace manifold {

ZapHandler::ZapHandler(std::string allow_list_file) : file_(std::move(allow_list_file)) {}

ZapHandler::~ZapHandler() = default;

Status ZapHandler::Start(zmq::context_t& context) {
  Result<CurveAllowList> keys = ReadCurveAllowList(file_);
  if (!keys.ok()) return keys.status().WithContext("--agent-keys");
  keys_ = std::move(*keys);
  socket_ = std::make_unique<zmq::socket_t>(context, zmq::socket_type::rep);
  socket_->set(zmq::sockopt::linger, 0);
  try {
    socket_->bind("inproc://zeromq.zap.01");
  } catch (const zmq::error_t& e) {
    return Status::FailedPrecondition(std::string("cannot start the agent key check (ZAP): ") +
                                      e.what());
  }
  spdlog::info("agents must present one of {} allowed CURVE keys from {}", keys_.size(), file_);
  return Status::Ok();
}

Status ZapHandler::Reload() {
  Result<CurveAllowList> keys = ReadCurveAllowList(file_);
  if (!keys.ok()) {
    spdlog::error("kept the previous agent key list ({} keys): {}", keys_.size(),
                  keys.status().message());
    return keys.status();
  }
  keys_ = std::move(*keys);
  refusals_logged_.clear();
  spdlog::info("reloaded the agent key list: {} allowed keys from {}", keys_.size(), file_);
  return Status::Ok();
}

std::string ZapHandler::Describe(const std::string& public_key) const {
  auto it = keys_.find(public_key);
  std::string fingerprint = CurveKeyFingerprint(public_key);
  if (it == keys_.end() || it->second.empty()) return fingerprint;
  return it->second + " (" + fingerprint + ")";
}

void ZapHandler::HandleRequests() {
  while (true) {
    std::vector<zmq::message_t> request;
    do {
      zmq::message_t part;
      if (!socket_->recv(part, zmq::recv_flags::dontwait)) {
        if (request.empty()) return;
        break;
      }
      request.push_back(std::move(part));
    } while (socket_->get(zmq::sockopt::rcvmore));
    // ZAP 1.0: version, request id, domain, address, routing id, mechanism, credentials.
    std::string request_id = request.size() > 1 ? request[1].to_string() : "";
    std::string status = "400", text = "malformed ZAP request", user_id;
    if (request.size() >= 6 && request[0].to_string_view() == "1.0") {
      std::string address = request[3].to_string();
      std::string mechanism = request[5].to_string();
      if (mechanism == "CURVE" && request.size() == 7 && request[6].size() == 32) {
        char z85[41] = {};
        zmq_z85_encode(z85, static_cast<const uint8_t*>(request[6].data()), 32);
        if (Allowed(z85)) {
          status = "200";
          text = "OK";
          user_id = z85;
        } else {
          text = "agent key not allowed";
          auto now = std::chrono::steady_clock::now();
          auto& logged = refusals_logged_[z85];
          if (logged == std::chrono::steady_clock::time_point{} ||
              now - logged > std::chrono::minutes(1)) {
            logged = now;
            spdlog::warn(
                "refused an agent from {} with CURVE key {}: not in the agent key list {} "
                "(add its .pub line there and send SIGHUP to allow it)",
                address, CurveKeyFingerprint(z85), file_);
          }
        }
      } else {
        text = "mechanism " + mechanism + " is not allowed";
        spdlog::warn("refused a {} connection from {}: agents must use CURVE", mechanism, address);
      }
    }
    socket_->send(zmq::str_buffer("1.0"), zmq::send_flags::sndmore);
    socket_->send(zmq::buffer(request_id), zmq::send_flags::sndmore);
    socket_->send(zmq::buffer(status), zmq::send_flags::sndmore);
    socket_->send(zmq::buffer(text), zmq::send_flags::sndmore);
    socket_->send(zmq::buffer(user_id), zmq::send_flags::sndmore);
    socket_->send(zmq::str_buffer(""), zmq::send_flags::none);
  }
}

}  // namespace manifold
