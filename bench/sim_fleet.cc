#include "bench/sim_fleet.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "common/wire.h"

namespace manifold::bench {
namespace {

using nlohmann::json;

int64_t Nanoseconds(Clock::time_point at) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count();
}

// A child's options travel as JSON on its command line.
json OptionsToJson(const SimFleetOptions& options) {
  json spec = {{"endpoint", options.endpoint},
               {"agents", options.agents},
               {"first_agent", options.first_agent},
               {"platforms", json::array()},
               {"slots", options.slots},
               {"id_prefix", options.id_prefix},
               {"heartbeat_ms", options.heartbeat_interval.count()},
               {"build_ms", options.build_time.count()},
               {"log_bytes", options.log_bytes},
               {"images", json::object()},
               {"threads", options.threads},
               {"connects_per_second", options.connects_per_second}};
  for (const Platform& platform : options.platforms) {
    spec["platforms"].push_back(platform.ToString());
  }
  for (const auto& [platform, image] : options.images) {
    spec["images"][platform.ToString()] = {
        {"media_type", image.media_type}, {"digest", image.digest}, {"size", image.size}};
  }
  return spec;
}

Result<SimFleetOptions> OptionsFromJson(const std::string& text) {
  json spec = json::parse(text, nullptr, false);
  if (!spec.is_object()) return Status::InvalidArgument("the child's spec is not a JSON object");
  try {
    SimFleetOptions options;
    options.endpoint = spec.at("endpoint").get<std::string>();
    options.agents = spec.at("agents").get<int>();
    options.first_agent = spec.at("first_agent").get<int>();
    for (const json& name : spec.at("platforms")) {
      Result<Platform> platform = ParsePlatform(name.get<std::string>());
      if (!platform.ok()) return platform.status();
      options.platforms.push_back(*platform);
    }
    options.slots = spec.at("slots").get<uint32_t>();
    options.id_prefix = spec.at("id_prefix").get<std::string>();
    options.heartbeat_interval = std::chrono::milliseconds(spec.at("heartbeat_ms").get<int64_t>());
    options.build_time = std::chrono::milliseconds(spec.at("build_ms").get<int64_t>());
    options.log_bytes = spec.at("log_bytes").get<uint32_t>();
    for (const auto& [name, image] : spec.at("images").items()) {
      Result<Platform> platform = ParsePlatform(name);
      if (!platform.ok()) return platform.status();
      options.images[*platform] = {image.at("media_type").get<std::string>(),
                                   image.at("digest").get<std::string>(),
                                   image.at("size").get<uint64_t>()};
    }
    options.threads = spec.at("threads").get<int>();
    options.connects_per_second = spec.at("connects_per_second").get<int>();
    return options;
  } catch (const json::exception& e) {
    return Status::InvalidArgument(std::string("the child's spec: ") + e.what());
  }
}

}  // namespace

struct SimFleet::Child {
  pid_t pid = -1;
  int to_child = -1;           // its stdin: closing it stops the child
  FILE* from_child = nullptr;  // its stdout: one report per line
  std::thread reader;
  std::atomic<int> state{0};  // 0 starting, 1 running, 2 failed or gone
  std::string error;          // written before state becomes 2
  // The counters it last reported (reader thread only).
  uint64_t welcomed = 0, assigned = 0, refused = 0, malformed = 0;
};

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
  std::map<uint64_t, Job> jobs;   // by job id, until acknowledged
  uint64_t assigns_received = 0;  // since the last welcome, told in heartbeats

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
  if (options_.processes > 1) return StartChildren();
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
    const int number = options_.first_agent + i;
    snprintf(id, sizeof(id), "%s-%05d", options_.id_prefix.c_str(), number);
    agent->id = id;
    agent->platform = options_.platforms[number % options_.platforms.size()];
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
  const uint64_t agents = static_cast<uint64_t>(options_.agents);
  while (welcomed_.load() + refused_.load() < agents && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (refused_.load() > 0) {
    return Status::FailedPrecondition(std::to_string(refused_.load()) +
                                      " simulated agents were refused by the coordinator");
  }
  if (welcomed_.load() < agents) {
    return Status::Unavailable("only " + std::to_string(welcomed_.load()) + " of " +
                               std::to_string(agents) + " simulated agents were welcomed within " +
                               std::to_string(timeout.count()) + " s");
  }
  return Status::Ok();
}

Status SimFleet::StartChildren() {
  if (options_.child_command.empty()) {
    return Status::InvalidArgument("a fleet in several processes needs the child's command");
  }
  const int processes = std::min(options_.processes, options_.agents);
  int next_agent = options_.first_agent;
  for (int c = 0; c < processes; ++c) {
    SimFleetOptions share = options_;
    share.processes = 1;
    share.child_command.clear();
    share.agents = options_.agents / processes + (c < options_.agents % processes ? 1 : 0);
    share.first_agent = next_agent;
    next_agent += share.agents;
    share.connects_per_second = std::max(1, options_.connects_per_second / processes);
    std::vector<std::string> args = options_.child_command;
    args.push_back(OptionsToJson(share).dump());
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    // Close-on-exec, so that no child inherits another's pipes (its stdin would never end).
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0) return Status::Internal("pipe2 failed");
    if (pipe2(out, O_CLOEXEC) != 0) {
      close(in[0]);
      close(in[1]);
      return Status::Internal("pipe2 failed");
    }
    pid_t pid = fork();
    if (pid == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    auto child = std::make_unique<Child>();
    child->pid = pid;
    child->to_child = in[1];
    child->from_child = fdopen(out[0], "r");
    if (pid < 0 || child->from_child == nullptr) {
      close(in[1]);
      if (child->from_child == nullptr) close(out[0]);
      Stop();
      return Status::Internal("cannot start a simulator process");
    }
    Child* raw = child.get();
    child->reader = std::thread([this, raw] { ReadChild(*raw); });
    children_.push_back(std::move(child));
  }
  auto deadline = Clock::now() + std::chrono::seconds(60);
  for (const auto& child : children_) {
    while (child->state.load() == 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (child->state.load() != 1) {
      std::string error = child->state.load() == 2 ? child->error : "it did not start in 60 s";
      Stop();
      return Status::FailedPrecondition("a simulator process failed: " + error);
    }
  }
  return Status::Ok();
}

void SimFleet::ReadChild(Child& child) {
  char* line = nullptr;
  size_t capacity = 0;
  auto add = [](std::atomic<uint64_t>& total, uint64_t& last, uint64_t now) {
    total += now - last;
    last = now;
  };
  while (getline(&line, &capacity, child.from_child) > 0) {
    unsigned long w, a, r, m, job, build;
    long long assigned_ns, at_ns;
    if (sscanf(line, "c %lu %lu %lu %lu", &w, &a, &r, &m) == 4) {
      add(welcomed_, child.welcomed, w);
      add(assigned_, child.assigned, a);
      add(refused_, child.refused, r);
      add(malformed_, child.malformed, m);
    } else if (sscanf(line, "k %lu %lu %lld %lld", &job, &build, &assigned_ns, &at_ns) == 4) {
      ++acked_;
      std::lock_guard lock(acks_mutex_);
      acks_.push_back({job, build, Clock::time_point(std::chrono::nanoseconds(assigned_ns)),
                       Clock::time_point(std::chrono::nanoseconds(at_ns))});
    } else if (strncmp(line, "started", 7) == 0) {
      child.state = 1;
    } else if (strncmp(line, "error ", 6) == 0) {
      child.error = std::string(line + 6);
      while (!child.error.empty() && child.error.back() == '\n') child.error.pop_back();
      child.state = 2;
    }
  }
  free(line);
  if (child.state.load() == 0) {
    child.error = "it exited before it started";
    child.state = 2;
  }
}

int SimFleet::RunChild(const std::string& spec) {
  Result<SimFleetOptions> options = OptionsFromJson(spec);
  if (!options.ok()) {
    printf("error %s\n", options.status().message().c_str());
    return 2;
  }
  SimFleet fleet(*options);
  if (Status started = fleet.Start(); !started.ok()) {
    printf("error %s\n", started.message().c_str());
    return 1;
  }
  printf("started\n");
  fflush(stdout);
  uint64_t reported[4] = {0, 0, 0, 0};
  bool parent_gone = false;
  while (!parent_gone) {
    pollfd input{0, POLLIN, 0};
    if (poll(&input, 1, 5) > 0) {
      char buffer[64];
      parent_gone = read(0, buffer, sizeof(buffer)) <= 0;
    }
    for (const RecordedJob& job : fleet.TakeAcks()) {
      printf("k %lu %lu %lld %lld\n", static_cast<unsigned long>(job.job_id),
             static_cast<unsigned long>(job.build_id),
             static_cast<long long>(Nanoseconds(job.assigned_at)),
             static_cast<long long>(Nanoseconds(job.at)));
    }
    uint64_t now[4] = {fleet.welcomed(), fleet.assigned(), fleet.refused(), fleet.malformed()};
    if (!std::equal(now, now + 4, reported)) {
      printf("c %lu %lu %lu %lu\n", static_cast<unsigned long>(now[0]),
             static_cast<unsigned long>(now[1]), static_cast<unsigned long>(now[2]),
             static_cast<unsigned long>(now[3]));
      std::copy(now, now + 4, reported);
    }
    fflush(stdout);
  }
  fleet.Stop();
  return 0;
}

void SimFleet::Stop() {
  for (const auto& child : children_) {
    if (child->to_child >= 0) close(child->to_child);  // the child stops its agents
    child->to_child = -1;
  }
  for (const auto& child : children_) {
    if (child->reader.joinable()) child->reader.join();
    if (child->from_child != nullptr) fclose(child->from_child);
    int status = 0;
    if (child->pid > 0) waitpid(child->pid, &status, 0);
  }
  children_.clear();
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
  if (options_.log_bytes > 0)
    agent.Send(LogChunkMsg{job.ref, 1, std::string(options_.log_bytes, '.')});
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
          agent.assigns_received = 0;
          agent.heartbeat = options_.heartbeat_interval.count() > 0
                                ? options_.heartbeat_interval
                                : std::chrono::milliseconds(message.heartbeat_interval_ms);
          agent.next_heartbeat = now + agent.heartbeat;
        } else if constexpr (std::is_same_v<T, AssignMsg>) {
          ++assigned_;
          ++agent.assigns_received;
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
        heartbeat.assigns_received = agent.assigns_received;
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
