#include "agent/image_store.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "agent/cache_mounts.h"
#include "agent/disk_usage.h"
#include "agent/job_policy.h"

namespace manifold {

namespace fs = std::filesystem;

namespace {

// A pass removes images, measures again and goes on while the goal is unmet, at most this
// many times: buildah's sizes are estimates, but a pass must end.
constexpr int kMaxRounds = 8;

// Milliseconds since the epoch: a job that starts right after another ended must not
// share its time.
int64_t Now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The JSON document in a command's output, which may hold warnings before it.
nlohmann::json ParseJsonOutput(const std::string& output, char opening) {
  size_t start = output.find(opening);
  if (start == std::string::npos) return nullptr;
  return nlohmann::json::parse(output.substr(start), nullptr, /*allow_exceptions=*/false);
}

}  // namespace

ImageStore::ImageStore(CommandRunner& runner, std::string buildah, ImageStoreOptions options,
                       std::string graph_root)
    : runner_(runner),
      buildah_(std::move(buildah)),
      options_(std::move(options)),
      graph_root_(std::move(graph_root)) {}

Result<std::unique_ptr<ImageStore>> ImageStore::Open(CommandRunner& runner, std::string buildah,
                                                     ImageStoreOptions options) {
  std::string output;
  Result<int> code = runner.Run(
      CommandSpec{{buildah, "info"}, {}, ""}, [&](std::string_view text) { output += text; },
      nullptr);
  if (!code.ok()) return code.status();
  nlohmann::json info = ParseJsonOutput(output, '{');
  if (*code != 0 || !info.is_object() || !info["store"]["GraphRoot"].is_string()) {
    return Status::FailedPrecondition(
        "`buildah info` did not say where buildah's container storage is; check the "
        "storage.conf it uses (CONTAINERS_STORAGE_CONF)");
  }
  auto store =
      std::unique_ptr<ImageStore>(new ImageStore(runner, std::move(buildah), std::move(options),
                                                 info["store"]["GraphRoot"].get<std::string>()));
  store->LoadState();
  return store;
}

ImageStore::~ImageStore() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ImageStore::Start(AgentMetrics* metrics) {
  metrics_ = metrics;
  thread_ = std::thread([this] { Loop(); });
  RequestPass();
}

Status ImageStore::Run(const std::vector<std::string>& args, std::string* output) {
  std::vector<std::string> argv = {buildah_};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string text;
  Result<int> code = runner_.Run(
      CommandSpec{argv, {}, ""}, [&](std::string_view out) { text += out; }, nullptr);
  if (!code.ok()) return code.status();
  if (output != nullptr) *output = text;
  if (*code != 0) {
    while (!text.empty() && text.back() == '\n') text.pop_back();
    return Status::Internal("`buildah " + args.front() + "` exited with status " +
                            std::to_string(*code) + ": " + text.substr(text.rfind('\n') + 1));
  }
  return Status::Ok();
}

std::unique_ptr<ImageStore::Use> ImageStore::BeginJob(std::vector<std::string> names) {
  std::lock_guard lock(mutex_);
  uint64_t id = next_job_++;
  jobs_[id] = Job{std::move(names), Now()};
  return std::unique_ptr<Use>(new Use(*this, id));
}

ImageStore::Use::~Use() { store_.EndJob(id_); }

void ImageStore::EndJob(uint64_t id) {
  {
    std::lock_guard lock(mutex_);
    auto job = jobs_.find(id);
    if (job == jobs_.end()) return;
    for (const std::string& name : job->second.names) used_names_[name] = Now();
    jobs_.erase(job);
  }
  RequestPass();
}

void ImageStore::RequestPass() {
  {
    std::lock_guard lock(mutex_);
    pass_wanted_ = true;
  }
  wake_.notify_all();
}

void ImageStore::Loop() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [&] { return pass_wanted_ || stopping_; });
    if (stopping_) return;
    pass_wanted_ = false;
    lock.unlock();
    Pass();
    lock.lock();
  }
}

void ImageStore::PruneNow() { Pass(); }

uint64_t ImageStore::FloorBytesNow(uint64_t* free) const {
  struct statvfs stats = {};
  if (::statvfs(graph_root_.c_str(), &stats) != 0) {
    *free = UINT64_MAX;  // unknown: no floor can be enforced
    return 0;
  }
  *free = static_cast<uint64_t>(stats.f_bavail) * stats.f_frsize;
  return FloorBytes(options_.min_free, static_cast<uint64_t>(stats.f_blocks) * stats.f_frsize);
}

bool ImageStore::BelowFloor(uint64_t* free) const {
  uint64_t floor = FloorBytesNow(free);
  return floor != 0 && *free < floor;
}

Status ImageStore::CheckRoom() {
  uint64_t free = 0;
  if (!BelowFloor(&free)) return Status::Ok();
  RequestPass();
  return Status::FailedPrecondition(
      "has only " + FormatBytes(free) + " free on the disk of its container storage (" +
      graph_root_ + "), under its free-space floor of " + DescribeFloor(options_.min_free) +
      " (--min-free-disk); it prunes its layer cache and takes jobs again once there is room");
}

std::string ImageStore::FloorReachedMessage(uint64_t free) const {
  return "the job stopped at the agent's free-space floor: its build steps left " +
         FormatBytes(free) +
         " free on the disk of the agent's container storage, under the "
         "floor of " +
         DescribeFloor(options_.min_free) +
         " (the agent's --min-free-disk); its partial layers were removed. The build writes "
         "more than this agent has room for: make its steps write less, or have the operator "
         "give the agent more disk or a smaller --cache-max-bytes";
}

bool ImageStore::Measure(uint64_t* used, uint64_t* free) const {
  (void)FloorBytesNow(free);
  if (*free == UINT64_MAX) return false;
  *used = DiskUsage(graph_root_);
  return true;
}

Result<std::vector<StoredImage>> ImageStore::ListImages() {
  std::string output;
  // Without --all: named images and dangling ones, not the intermediate images of
  // --layers, which go with the last image that needs them.
  if (Status listed = Run({"images", "--json", "--no-trunc"}, &output); !listed.ok()) {
    return listed;
  }
  nlohmann::json list = ParseJsonOutput(output, '[');
  if (!list.is_array()) return Status::Internal("`buildah images --json` printed no list");
  std::vector<StoredImage> images;
  for (const nlohmann::json& entry : list) {
    if (!entry["id"].is_string()) continue;
    StoredImage image;
    image.id = entry["id"].get<std::string>();
    if (image.id.rfind("sha256:", 0) == 0) image.id = image.id.substr(7);
    if (entry["names"].is_array()) {
      for (const nlohmann::json& name : entry["names"]) {
        if (name.is_string()) image.names.push_back(name.get<std::string>());
      }
    }
    if (entry["size"].is_string()) {
      Result<uint64_t> bytes = ParseDecimalSize(entry["size"].get<std::string>());
      if (bytes.ok()) image.bytes = *bytes;
    }
    images.push_back(std::move(image));
  }
  return images;
}

void ImageStore::LoadState() {
  std::lock_guard lock(pass_mutex_);
  std::ifstream in(options_.state_file);
  std::string id;
  int64_t when = 0;
  while (in >> id >> when) last_used_[id] = when;
}

void ImageStore::SaveState() const {
  if (options_.state_file.empty()) return;
  std::string temp = options_.state_file + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    for (const auto& [id, when] : last_used_) out << id << " " << when << "\n";
    if (!out) return;
  }
  std::error_code ec;
  fs::rename(temp, options_.state_file, ec);
}

void ImageStore::Pass() {
  std::lock_guard pass_lock(pass_mutex_);
  std::set<std::string> names_in_use;
  std::map<std::string, int64_t> used_names;
  int64_t oldest_job = INT64_MAX;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, job] : jobs_) {
      names_in_use.insert(job.names.begin(), job.names.end());
      oldest_job = std::min(oldest_job, job.started);
    }
    used_names.swap(used_names_);
    // Idle: every working container is a stopped build's leftover. Under the lock, so
    // that no job starts a build meanwhile.
    if (jobs_.empty()) {
      if (Status removed = Run({"rm", "--all"}); !removed.ok()) {
        spdlog::warn("cannot remove the working containers builds left: {}", removed.message());
      }
    }
  }
  uint64_t pruned_images = 0;
  uint64_t pruned_bytes = 0;
  uint64_t used = 0;
  uint64_t free = 0;
  for (int round = 0; round <= kMaxRounds; ++round) {
    Result<std::vector<StoredImage>> images = ListImages();
    if (!images.ok()) {
      spdlog::warn("cannot list the images in the container storage: {}",
                   images.status().message());
      return;
    }
    const int64_t now = Now();
    std::map<std::string, int64_t> seen;
    std::set<std::string> in_use;
    for (StoredImage& image : *images) {
      auto known = last_used_.find(image.id);
      image.last_used = known != last_used_.end() ? known->second : 0;
      for (const std::string& name : image.names) {
        if (auto used_at = used_names.find(name); used_at != used_names.end()) {
          image.last_used = std::max(image.last_used, used_at->second);
        }
        if (names_in_use.count(name) != 0) in_use.insert(image.id);
      }
      if (image.last_used == 0) image.last_used = now;  // first seen, never used
      // Seen or used since the oldest running job started: perhaps that job's own.
      if (image.last_used >= oldest_job) in_use.insert(image.id);
      seen[image.id] = image.last_used;
    }
    last_used_ = std::move(seen);
    SaveState();
    uint64_t mounts_bytes = 0;
    if (options_.cache_mounts != nullptr) {
      for (StoredImage& mounts : options_.cache_mounts->List(&in_use)) {
        mounts_bytes += mounts.bytes;
        images->push_back(std::move(mounts));
      }
    }

    uint64_t measured_used = 0;
    if (!Measure(&measured_used, &free)) return;
    measured_used += mounts_bytes;
    if (round > 0 && used > measured_used) pruned_bytes += used - measured_used;
    used = measured_used;
    if (metrics_ != nullptr) metrics_->SetImageStore(used, free);
    DiskGoal goal{options_.max_bytes, 0};
    goal.min_free_bytes = FloorBytesNow(&free);
    std::vector<std::string> picked = round < kMaxRounds
                                          ? PickImagesToPrune(*images, in_use, used, free, goal)
                                          : std::vector<std::string>{};
    uint64_t removed = 0;
    for (const std::string& id : picked) {
      auto image = std::find_if(images->begin(), images->end(),
                                [&](const StoredImage& i) { return i.id == id; });
      if (CacheMounts::IsEntry(id)) {
        if (options_.cache_mounts->Remove(id)) {
          ++removed;
          spdlog::info("removed the {} (least recently used) for --cache-max-bytes",
                       image->names.front());
        }
        continue;
      }
      // By its names (buildah refuses an id with several); a dangling one by its id.
      std::vector<std::string> args = {"rmi"};
      if (image->names.empty()) {
        args.push_back(id);
      } else {
        args.insert(args.end(), image->names.begin(), image->names.end());
      }
      if (Status gone = Run(args); gone.ok()) {
        ++removed;
        last_used_.erase(id);
      } else {
        spdlog::debug("kept image {}: {}", id.substr(0, 12), gone.message());
      }
    }
    pruned_images += removed;
    if (removed == 0) {
      if (OverGoal(goal, used, free)) {
        spdlog::warn(
            "container storage holds {} with {} free, over its cap of {} (--cache-max-bytes) or "
            "under its floor of {} (--min-free-disk), but what is left is in use by running jobs",
            FormatBytes(used), FormatBytes(free),
            options_.max_bytes == 0 ? "none" : FormatBytes(options_.max_bytes),
            DescribeFloor(options_.min_free));
      }
      break;
    }
  }
  if (pruned_images > 0) {
    if (metrics_ != nullptr) metrics_->CountPruned(pruned_images, pruned_bytes);
    spdlog::info("pruned {} image(s) from the container storage, freeing {}: it holds {}, {} free",
                 pruned_images, FormatBytes(pruned_bytes), FormatBytes(used), FormatBytes(free));
  }
}

FloorWatch::FloorWatch(const ImageStore& store, const std::atomic<bool>* outer) {
  thread_ = std::thread([this, &store, outer] {
    using std::chrono::milliseconds;
    const milliseconds tick = std::min(milliseconds(100), store.watch_interval());
    auto next_check = std::chrono::steady_clock::now();
    std::unique_lock lock(mutex_);
    while (!done_) {
      if (outer != nullptr && *outer) cancel_ = true;
      if (std::chrono::steady_clock::now() >= next_check) {
        next_check += store.watch_interval();
        if (uint64_t free = 0; store.BelowFloor(&free)) {
          free_when_reached_ = free;
          reached_ = true;
          cancel_ = true;
        }
      }
      wake_.wait_for(lock, tick, [&] { return done_; });
    }
  });
}

FloorWatch::~FloorWatch() {
  {
    std::lock_guard lock(mutex_);
    done_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

}  // namespace manifold
