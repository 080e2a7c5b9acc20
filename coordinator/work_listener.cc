#include "coordinator/work_listener.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <pqxx/pqxx>

#include "coordinator/database_url.h"
#include "coordinator/store.h"

namespace manifold {
namespace {

class Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection& connection, const WorkListenerOptions& options)
      : pqxx::notification_receiver(connection, Store::kWorkChannel), options_(options) {}
  void operator()(const std::string& origin, int) override {
    if (origin != options_.self) options_.on_work();
  }

 private:
  const WorkListenerOptions& options_;
};

}  // namespace

WorkListener::WorkListener(WorkListenerOptions options) : options_(std::move(options)) {}

WorkListener::~WorkListener() { Stop(); }

void WorkListener::Start() {
  thread_ = std::thread([this] { Run(); });
}

void WorkListener::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void WorkListener::Run() {
  bool warned = false;
  while (!stopping_) {
    try {
      pqxx::connection connection(WithConnectionDeadlines(options_.database_url));
      Receiver receiver(connection, options_);
      connection.get_notifs();  // LISTEN is sent on the first use of the receiver
      if (warned) spdlog::info("listening for other coordinators' work again");
      warned = false;
      options_.on_work();  // what was announced while nobody listened
      // Wakes every 200 ms to notice Stop; a broken connection throws.
      while (!stopping_) connection.await_notification(0, 200000);
    } catch (const std::exception& e) {
      if (!warned) {
        spdlog::warn(
            "cannot listen for builds and cancels taken by other coordinators' APIs "
            "(retrying every 2 s): {}",
            e.what());
      }
      warned = true;
    }
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, std::chrono::seconds(2), [&] { return stopping_.load(); });
  }
}

}  // namespace manifold
