// WorkListener: wakes the leader's loop when another coordinator's API changed the work.
//
// Every coordinator's API serves submits and cancels: it writes them to the database, and
// each such transaction also NOTIFYs Store::kWorkChannel with the writer's name
// (Store::AnnounceWork). The leader LISTENs on a connection of its own and calls on_work
// for each notification another coordinator sent, and once after every (re)connection,
// since notifications sent while it was away are lost; on_work then reads the work back
// from the database (Coordinator::ReadWorkBack). Thread-safe; one thread of its own.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace manifold {

struct WorkListenerOptions {
  std::string database_url;
  std::string self;  // this coordinator's name: its own notifications are not news
  std::function<void()> on_work;
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
