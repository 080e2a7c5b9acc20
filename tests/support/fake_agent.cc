#include "tests/support/fake_agent.h"

#include "common/digest.h"
#include "common/wire.h"

namespace manifold::test {

FakeAgent::FakeAgent(zmq::context_t& context, const std::string& endpoint)
    : socket_(context, zmq::socket_type::dealer) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.set(zmq::sockopt::sndtimeo, 5000);  // a send with no live connection would block
  socket_.connect(endpoint);
}

void FakeAgent::Send(const AgentMessage& message) { SendRaw(EncodeAgentMessage(message)); }

void FakeAgent::Hello(const std::string& id, const char* platform, uint32_t version,
                      std::vector<JobRef> running, bool emulated) {
  HelloMsg hello;
  hello.protocol_version = version;
  hello.running_jobs = std::move(running);
  hello.agent_id = id;
  hello.hostname = id;
  hello.platforms = {{*ParsePlatform(platform), emulated}};
  Send(hello);
}

void FakeAgent::Succeed(const JobRef& job) {
  Send(JobResultMsg{
      job,
      true,
      {"application/vnd.oci.image.manifest.v1+json", Sha256Digest(std::to_string(job.job_id)), 10},
      "",
      false});
}

void FakeAgent::Heartbeat() { Send(HeartbeatMsg{{held_.begin(), held_.end()}, assigns_received_}); }

std::optional<CoordinatorMessage> FakeAgent::Next(std::chrono::milliseconds wait) {
  zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(items, 1, wait);
  if (!(items[0].revents & ZMQ_POLLIN)) return std::nullopt;
  zmq::message_t frame;
  if (!socket_.recv(frame, zmq::recv_flags::dontwait)) return std::nullopt;
  Result<CoordinatorMessage> message = DecodeCoordinatorMessage(frame.to_string_view());
  if (!message.ok()) return std::nullopt;
  if (std::holds_alternative<WelcomeMsg>(*message)) assigns_received_ = 0;
  if (auto* assign = std::get_if<AssignMsg>(&*message)) {
    held_.insert(assign->job);
    ++assigns_received_;
  }
  if (auto* cancel = std::get_if<CancelMsg>(&*message)) held_.erase(cancel->job);
  if (auto* ack = std::get_if<AckMsg>(&*message)) held_.erase(ack->job);
  return *message;
}

}  // namespace manifold::test
