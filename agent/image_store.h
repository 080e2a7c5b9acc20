// ImageStore: a buildah agent's container storage (its layers, pulled base images and
// cache images), kept under a cap and above a free-space floor.
//
// After each job, and at start, a pass on a thread of its own measures what the storage
// holds (the size of its graph root on disk, which for vfs counts every layer's full
// copy) and the free space of its file system, and removes images, least recently used
// first (PrunePlan), until the storage is under --cache-max-bytes and the file system has
// --min-free-disk free, never an image a running job uses: those its Dockerfile builds
// from and its repository's cache image (by name), any image first seen or last used since
// it started (its own steps among them), and any a container holds (buildah refuses
// those). The agent's cache-mount directories (CacheMounts) count against the cap too and
// are pruned by the same plan. When no job runs,
// the pass also removes every working container: what a stopped build left. When each
// image was last used is kept in a state file, so that an agent restart does not make
// every image look new. A job is refused (so the coordinator gives it to another agent)
// while the file system is below the floor, and FloorWatch stops a build whose steps
// take it below the floor.
//
// Thread-safety: every method may be called from any thread; passes run one at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/command_runner.h"
#include "agent/metrics.h"
#include "agent/prune_plan.h"
#include "common/status.h"

namespace manifold {

class CacheMounts;

struct ImageStoreOptions {
  uint64_t max_bytes = uint64_t{20} << 30;        // --cache-max-bytes; 0: no cap
  DiskFloor min_free = {uint64_t{2} << 30, 0};    // --min-free-disk; zero: no floor
  std::string state_file;                         // when each image was last used
  std::chrono::milliseconds watch_interval{500};  // FloorWatch's
  // Not owned; may be null. Its directories count against the cap with the storage and
  // are pruned with the images, least recently used first, never one a job holds.
  CacheMounts* cache_mounts = nullptr;
};

class ImageStore {
 public:
  // Asks buildah where its storage is (`buildah info`).
  static Result<std::unique_ptr<ImageStore>> Open(CommandRunner& runner, std::string buildah,
                                                  ImageStoreOptions options);
  ~ImageStore();  // waits for a running pass
  ImageStore(const ImageStore&) = delete;
  ImageStore& operator=(const ImageStore&) = delete;

  // Starts the pass thread and a first pass; `metrics` (not owned) may be null.
  void Start(AgentMetrics* metrics);

  // A running job's hold on the images it names (fully qualified references); when it
  // goes, they count as used now and a pass follows.
  class Use {
   public:
    ~Use();
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;

   private:
    friend class ImageStore;
    Use(ImageStore& store, uint64_t id) : store_(store), id_(id) {}
    ImageStore& store_;
    uint64_t id_;
  };
  std::unique_ptr<Use> BeginJob(std::vector<std::string> names);

  // FailedPrecondition "has only ... free ..., under its free-space floor of ...
  // (--min-free-disk); ..." (to follow "agent ID ") when the file system is below the
  // floor, and a pass is asked for; OK otherwise.
  Status CheckRoom();
  // True when the file system is below the floor now; *free is what it has free.
  bool BelowFloor(uint64_t* free) const;
  // Why a job stopped at the floor, with `free` bytes left, naming the flag.
  std::string FloorReachedMessage(uint64_t free) const;
  // Runs a pass on the calling thread (after a build stopped at the floor, so that its
  // leftovers are gone before its result is reported).
  void PruneNow();

  const std::string& graph_root() const { return graph_root_; }
  std::chrono::milliseconds watch_interval() const { return options_.watch_interval; }

 private:
  ImageStore(CommandRunner& runner, std::string buildah, ImageStoreOptions options,
             std::string graph_root);
  struct Job {
    std::vector<std::string> names;
    int64_t started = 0;
  };
  void EndJob(uint64_t id);
  void RequestPass();
  void Loop();
  void Pass();
  // Used and free bytes; false if the file system cannot be read.
  bool Measure(uint64_t* used, uint64_t* free) const;
  uint64_t FloorBytesNow(uint64_t* free) const;
  Result<std::vector<StoredImage>> ListImages();
  void LoadState();
  void SaveState() const;
  Status Run(const std::vector<std::string>& args, std::string* output = nullptr);

  CommandRunner& runner_;
  const std::string buildah_;
  const ImageStoreOptions options_;
  const std::string graph_root_;
  AgentMetrics* metrics_ = nullptr;

  std::mutex pass_mutex_;                     // one pass at a time; guards last_used_
  std::map<std::string, int64_t> last_used_;  // image id -> milliseconds since the epoch

  std::mutex mutex_;  // guards what follows
  std::condition_variable wake_;
  bool pass_wanted_ = false;
  bool stopping_ = false;
  uint64_t next_job_ = 1;
  std::map<uint64_t, Job> jobs_;               // running
  std::map<std::string, int64_t> used_names_;  // by jobs that ended since the last pass
  std::thread thread_;
};

// Watches the floor while a build step runs: cancel() is the flag to give the step. It
// is set when `outer` is, and when the storage's file system falls below the floor, which
// reached() then says, with the bytes free at that moment.
class FloorWatch {
 public:
  FloorWatch(const ImageStore& store, const std::atomic<bool>* outer);
  ~FloorWatch();
  FloorWatch(const FloorWatch&) = delete;
  FloorWatch& operator=(const FloorWatch&) = delete;

  const std::atomic<bool>* cancel() const { return &cancel_; }
  bool reached() const { return reached_; }
  uint64_t free_when_reached() const { return free_when_reached_; }

 private:
  std::atomic<bool> cancel_{false};
  std::atomic<bool> reached_{false};
  std::atomic<uint64_t> free_when_reached_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace manifold
