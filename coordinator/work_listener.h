// WorkListener: wakes the leader's loop when another coordinator's API changed the work.
//
// Every coordinator's API serves submits and cancels: it writes them to the database, and
// each such transaction also NOTIFYs Store::kWorkChannel with what it did to which build
// and the writer's name (Store::AnnounceWork). The leader LISTENs on a connection of its
// own and calls on_work for each notification another coordinator sent, naming the build,
// and once with kAll after every (re)connection, since notifications sent while it was
// away are lost: then the loop reads all its work back from the database. Thread-safe;
// one thread of its own.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace manifold {

struct WorkNotice {
  enum class Kind { kAll, kBuild, kCancel };
  Kind kind = Kind::kAll;
  uint64_t build_id = 0;  // of kBuild (submitted) and kCancel (canceled)
};

// The notice in a notification's payload ("build 12 NAME", "cancel 12 NAME") if it came
// from another coordinator than `self`; nothing for this one's own or an unreadable one.
std::optional<WorkNotice> ParseWorkNotice(const std::string& payload, const std::string& self);

struct WorkListenerOptions {
  std::string database_url;
  std::string self;  // this coordinator's name: its own notifications are not news
  std::function<void(const WorkNotice& notice)> on_work;
};

class WorkListener {
 public:
  explicit WorkListener(WorkListenerOptions options);
  ~WorkListener();

  void Start();
  void Stop();

 private:
  void Run();

  const WorkListenerOptions options_;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::condition_variable wake_;  // cuts a reconnect back-off short on Stop
  std::thread thread_;
};

}  // namespace manifold
