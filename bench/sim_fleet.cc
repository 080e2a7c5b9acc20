#include "bench/sim_fleet.h"

#include <sys/resource.h>
#include <unistd.h>

#include <zmq.hpp>

#include "common/wire.h"

namespace manifold::bench {

struct SimFleet::Agent {
  std::string id;
  Platform platform;
  std::unique_ptr<zmq::socket_t> socket;
  bool connected = false;
  bool welcomed = false;
  bool refused = false;
  std::chrono::milliseconds heartbeat{2000};
  Clock::time_point next_heartbeat;
  Clock::time_point hello_sent;
  struct Job {
    JobRef ref;
    uint64_t build_id = 0;
    Clock::time_point assigned_at;
    Clock::time_point done_at;  // when the simulated build ends
    bool reported = false;
  };
  std::map<uint64_t, Job> jobs;  // by job id, until acknowledged

  void Send(const AgentMessage& message) {
    std::string frame = EncodeAgentMessage(message);
    socket->send(zmq::buffer(frame), zmq::send_flags::dontwait);
  }
};

uint64_t RaiseFileLimit(uint64_t wanted) {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur >= wanted) return limit.rlim_cur;
  rlimit raised = limit;
  raised.rlim_cur = wanted;
  if (raised.rlim_max < wanted) raised.rlim_max = wanted;  // needs root (CAP_SYS_RESOURCE)
  if (setrlimit(RLIMIT_NOFILE, &raised) != 0) {
    raised.rlim_cur = limit.rlim_max;
    raised.rlim_max = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &raised);
  }
  getrlimit(RLIMIT_NOFILE, &limit);
  return limit.rlim_cur;
}

SimFleet::SimFleet(SimFleetOptions options) : options_(std::move(options)) {}

SimFleet::~SimFleet() { Stop(); }

Status SimFleet::Start() {
  if (options_.agents <= 0 || options_.platforms.empty() || options_.threads <= 0) {
    return Status::InvalidArgument("a fleet needs at least one agent, platform and thread");
  }
  for (const Platform& platform : options_.platforms) {
    if (!options_.images.count(platform)) {
      return Status::InvalidArgument("no synthetic image for " + platform.ToString());
    }
  }
  // Each socket takes a mailbox descriptor and a connection: check before creating them,
  // since libzmq aborts when it runs out of descriptors.
  uint64_t needed = 2 * static_cast<uint64_t>(options_.agents) + 256;
  uint64_t limit = RaiseFileLimit(needed);
  if (limit < needed) {
    return Status::FailedPrecondition(
        std::to_string(options_.agents) + " agents need " + std::to_string(needed) +
        " file descriptors but the limit is " + std::to_string(limit) +
        "; raise it (ulimit -n) or run as root, or simulate fewer agents");
  }
  context_ = std::make_unique<zmq::context_t>();
  context_->set(zmq::ctxopt::max_sockets, options_.agents + 64);
  for (int i = 0; i < options_.agents; ++i) {
    auto agent = std::make_unique<Agent>();
    char id[64];
    snprintf(id, sizeof(id), "%s-%05d", options_.id_prefix.c_str(), i);
    agent->id = id;
    agent->platform = options_.platforms[i % options_.platforms.size()];
    agent->socket = std::make_unique<zmq::socket_t>(*context_, zmq::socket_type::dealer);
    agent->socket->set(zmq::sockopt::routing_id, agent->id);
    agent->socket->set(zmq::sockopt::linger, 0);
    agents_.push_back(std::move(agent));
  }
  for (int t = 0; t < options_.threads; ++t) threads_.emplace_back([this, t] { Run(t); });
  return Status::Ok();
}

Status SimFleet::WaitWelcomed(std::chrono::seconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (welcomed_.load() + refused_.load() < agents_.size() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (refused_.load() > 0) {
    return Status::FailedPrecondition(std::to_string(refused_.load()) +
                                      " simulated agents were refused by the coordinator");
  }
  if (welcomed_.load() < agents_.size()) {
    return Status::Unavailable(
        "only " + std::to_string(welcomed_.load()) + " of " + std::to_string(agents_.size()) +
        " simulated agents were welcomed within " + std::to_string(timeout.count()) + " s");
  }
  return Status::Ok();
}

void SimFleet::Stop() {
  if (threads_.empty()) return;
  stopping_ = true;
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
  agents_.clear();
  context_.reset();
}

std::vector<RecordedJob> SimFleet::TakeAcks() {
  std::lock_guard lock(acks_mutex_);
  std::vector<RecordedJob> taken;
  taken.swap(acks_);
  return taken;
}

void SimFleet::SendHello(Agent& agent) {
  HelloMsg hello;
  hello.agent_id = agent.id;
  hello.version = "fleet-sim";
  hello.hostname = "fleet-sim";
  hello.platforms = {{agent.platform, false}};
  hello.slots = options_.slots;
  for (const auto& [job_id, job] : agent.jobs) hello.running_jobs.push_back(job.ref);
  agent.hello_sent = Clock::now();
  agent.Send(hello);
}

void SimFleet::Finish(Agent& agent, uint64_t job_id) {
  Agent::Job& job = agent.jobs.at(job_id);
  agent.Send(JobUpdateMsg{job.ref, JobPhase::kPushing});
  JobResultMsg result;
  result.job = job.ref;
  result.succeeded = true;
  result.image = options_.images.at(agent.platform);
  agent.Send(result);
  job.reported = true;
}

void SimFleet::Handle(Agent& agent, std::string_view frame, Clock::time_point now) {
  Result<CoordinatorMessage> decoded = DecodeCoordinatorMessage(frame);
  if (!decoded.ok()) {
    ++malformed_;
    return;
  }
  std::visit(
      [&](const auto& message) {
        using T = std::decay_t<decltype(message)>;
        if constexpr (std::is_same_v<T, WelcomeMsg>) {
          if (!agent.welcomed) ++welcomed_;
          agent.welcomed = true;
          agent.heartbeat = options_.heartbeat_interval.count() > 0
                                ? options_.heartbeat_interval
                                : std::chrono::milliseconds(message.heartbeat_interval_ms);
          agent.next_heartbeat = now + agent.heartbeat;
        } else if constexpr (std::is_same_v<T, AssignMsg>) {
          ++assigned_;
          Agent::Job& job = agent.jobs[message.job.job_id];
          job.ref = message.job;
          job.build_id = message.build_id;
          job.assigned_at = now;
          job.done_at = now + options_.build_time;
          agent.Send(JobUpdateMsg{message.job, JobPhase::kAccepted});
          agent.Send(JobUpdateMsg{message.job, JobPhase::kBuilding});
          if (options_.build_time.count() == 0) Finish(agent, message.job.job_id);
        } else if constexpr (std::is_same_v<T, AckMsg>) {
          auto it = agent.jobs.find(message.job.job_id);
          if (it == agent.jobs.end() || !(it->second.ref == message.job)) return;
          ++acked_;
          {
            std::lock_guard lock(acks_mutex_);
            acks_.push_back({message.job.job_id, it->second.build_id, it->second.assigned_at, now});
          }
          agent.jobs.erase(it);
        } else if constexpr (std::is_same_v<T, CancelMsg>) {
          agent.jobs.erase(message.job.job_id);
        } else if constexpr (std::is_same_v<T, RejectMsg>) {
          if (message.fatal) {
            if (!agent.refused) ++refused_;
            agent.refused = true;
          } else {
            SendHello(agent);
          }
        } else if constexpr (std::is_same_v<T, DrainMsg>) {
          agent.Send(DrainingMsg{});
        }
      },
      *decoded);
}

void SimFleet::Run(int thread_index) {
  std::vector<Agent*> mine;
  for (size_t i = thread_index; i < agents_.size(); i += options_.threads) {
    mine.push_back(agents_[i].get());
  }
  std::vector<zmq::pollitem_t> items;
  size_t connected = 0;
  double connect_budget = 0;
  Clock::time_point last_tick = Clock::now();
  const double connects_per_second =
      static_cast<double>(options_.connects_per_second) / options_.threads;
  zmq::message_t message;
  while (!stopping_) {
    Clock::time_point now = Clock::now();
    // Connect the next agents at the ramp's rate.
    connect_budget += connects_per_second * std::chrono::duration<double>(now - last_tick).count();
    last_tick = now;
    while (connected < mine.size() && connect_budget >= 1) {
      Agent& agent = *mine[connected++];
      agent.socket->connect(options_.endpoint);
      agent.connected = true;
      SendHello(agent);
      items.push_back({agent.socket->handle(), 0, ZMQ_POLLIN, 0});
      connect_budget -= 1;
    }
    if (connected == mine.size()) connect_budget = 0;

    bool builds_running = false;
    for (size_t i = 0; i < connected; ++i) {
      Agent& agent = *mine[i];
      if (agent.refused) continue;
      if (!agent.welcomed) {
        // The first hello may have reached a coordinator still busy with a crowd of them.
        if (now - agent.hello_sent > std::chrono::seconds(30)) SendHello(agent);
        continue;
      }
      for (auto& [job_id, job] : agent.jobs) {
        if (job.reported) continue;
        if (now >= job.done_at) {
          Finish(agent, job_id);
        } else {
          builds_running = true;
        }
      }
      if (now >= agent.next_heartbeat) {
        HeartbeatMsg heartbeat;
        for (const auto& [job_id, job] : agent.jobs) heartbeat.running_jobs.push_back(job.ref);
        agent.Send(heartbeat);
        agent.next_heartbeat = now + agent.heartbeat;
      }
    }
    auto timeout = builds_running || connected < mine.size() ? std::chrono::milliseconds(5)
                                                             : std::chrono::milliseconds(50);
    if (items.empty()) {
      std::this_thread::sleep_for(timeout);
      continue;
    }
    zmq::poll(items.data(), items.size(), timeout);
    now = Clock::now();
    for (size_t i = 0; i < items.size(); ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      Agent& agent = *mine[i];
      while (agent.socket->recv(message, zmq::recv_flags::dontwait)) {
        Handle(agent, message.to_string_view(), now);
      }
    }
  }
  for (size_t i = 0; i < connected; ++i) {
    Agent& agent = *mine[i];
    if (!agent.welcomed) continue;
    agent.socket->set(zmq::sockopt::linger, 1000);
    agent.Send(GoodbyeMsg{});
  }
  for (Agent* agent : mine) agent->socket.reset();
}

}  // namespace manifold::bench
