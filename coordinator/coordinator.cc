#include "coordinator/coordinator.h"

#include <spdlog/spdlog.h>

namespace manifold {

namespace {

RegistryOptions MergerRegistryOptions(const CoordinatorOptions& options, Metrics& metrics) {
  RegistryOptions registry;
  registry.insecure_registries = options.insecure_registries;
  registry.on_request = [&metrics](RegistryOperation operation, long http_status) {
    metrics.CountRegistryRequest(operation, http_status);
  };
  return registry;
}

}  // namespace

Coordinator::Coordinator(LoopStore& store, Metrics& metrics, CoordinatorOptions options)
    : metrics_(metrics),
      options_(std::move(options)),
      merger_(MergerRegistryOptions(options_, metrics), options_.loop.leading),
      merges_(store, metrics,
              [this](const BuildRecord& build) { return merger_.MergeAndPushIndex(build); },
              {.workers = options_.merge_workers, .leading = options_.loop.leading}),
      socket_({options_.agent_endpoint, options_.loop.limits.max_frame_bytes,
               options_.curve_secret_key, options_.agent_keys_file}),
      loop_(
          store, socket_, metrics, [this](BuildRecord build) { merges_.Request(std::move(build)); },
          options_.loop, LoopClock::now()) {}

Coordinator::~Coordinator() { Stop(); }

Status Coordinator::Start() {
  if (Status bound = socket_.Bind(); !bound.ok()) return bound;
  if (Status resumed = loop_.Resume(LoopClock::now()); !resumed.ok()) return resumed;
  spdlog::info("agent socket on {}", socket_.endpoint());
  merges_.Start();
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void Coordinator::Stop() {
  if (stopping_.exchange(true)) return;
  socket_.Wake();
  if (thread_.joinable()) thread_.join();
  merges_.Stop();
  socket_.Close();
}

void Coordinator::Run() {
  while (!stopping_) {
    socket_.Poll(
        std::chrono::milliseconds(200),
        [this](const std::string& routing_id, const std::string& peer_key,
               const std::string& frame) {
          loop_.HandleFrame(routing_id, peer_key, frame, LoopClock::now());
        },
        [this](const std::string& why) { loop_.CountMalformed(why); });
    std::vector<std::function<void()>> tasks;
    {
      std::lock_guard lock(inbox_mutex_);
      tasks.swap(inbox_);
    }
    for (auto& task : tasks) task();
    loop_.Tick(LoopClock::now());
  }
}

void Coordinator::Post(std::function<void()> task) {
  {
    std::lock_guard lock(inbox_mutex_);
    inbox_.push_back(std::move(task));
  }
  socket_.Wake();
}

void Coordinator::Enqueue(std::vector<QueuedJob> jobs, std::map<std::string, std::string> secrets) {
  auto held = std::make_shared<const std::map<std::string, std::string>>(std::move(secrets));
  Post([this, jobs = std::move(jobs), held = std::move(held)]() mutable {
    loop_.Enqueue(std::move(jobs), std::move(held), LoopClock::now());
  });
}

void Coordinator::BuildCanceled(std::vector<JobRecord> jobs) {
  metrics_.CountBuild("canceled");
  Post([this, jobs = std::move(jobs)] { loop_.BuildCanceled(jobs); });
}

Status Coordinator::DrainAgent(const std::string& agent_id) {
  std::vector<AgentView> agents = Agents();
  if (std::none_of(agents.begin(), agents.end(),
                   [&](const AgentView& a) { return a.id == agent_id; })) {
    return Status::NotFound("no agent " + agent_id + " is connected");
  }
  Post([this, agent_id] { loop_.Drain(agent_id); });
  return Status::Ok();
}

void Coordinator::TakeWork(const WorkNotice& notice) {
  switch (notice.kind) {
    case WorkNotice::Kind::kAll:
      if (read_back_posted_.exchange(true)) return;
      return Post([this] {
        read_back_posted_ = false;
        loop_.ReadWorkBack(LoopClock::now());
      });
    case WorkNotice::Kind::kBuild: {
      // Read in one batch: a busy standby API announces builds faster than one at a time.
      std::lock_guard lock(inbox_mutex_);
      builds_to_take_.push_back(notice.build_id);
      if (builds_to_take_.size() > 1) return;
    }
      return Post([this] {
        std::vector<uint64_t> ids;
        {
          std::lock_guard lock(inbox_mutex_);
          ids.swap(builds_to_take_);
        }
        loop_.TakeBuilds(ids, LoopClock::now());
      });
    case WorkNotice::Kind::kCancel:
      return Post([this, id = notice.build_id] { loop_.TakeCancel(id); });
  }
}

std::vector<AgentView> Coordinator::Agents() const { return loop_.Agents(LoopClock::now()); }

void Coordinator::ReloadAgentKeys() {
  Post([this] {
    if (!socket_.encrypted()) {
      spdlog::info("no agent key list to reload: the agent link is plaintext");
      return;
    }
    if (!socket_.ReloadKeys()) return;
    loop_.CutOffAgents([this](const std::string& key) { return socket_.KeyAllowed(key); },
                       socket_.keys_file(), LoopClock::now());
  });
}

}  // namespace manifold
