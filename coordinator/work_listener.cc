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
  void operator()(const std::string& payload, int) override {
    if (std::optional<WorkNotice> notice = ParseWorkNotice(payload, options_.self)) {
      options_.on_work(*notice);
    }
  }

 private:
  const WorkListenerOptions& options_;
};

}  // namespace

std::optional<WorkNotice> ParseWorkNotice(const std::string& payload, const std::string& self) {
  const size_t space = payload.find(' ');
  const size_t second = space == std::string::npos ? space : payload.find(' ', space + 1);
  if (second == std::string::npos || payload.substr(second + 1) == self) return std::nullopt;
  const std::string what = payload.substr(0, space);
  const std::string id = payload.substr(space + 1, second - space - 1);
  if (id.empty() || id.size() > 19 || id.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  WorkNotice notice;
  notice.build_id = std::stoull(id);
  if (what == "build") {
    notice.kind = WorkNotice::Kind::kBuild;
  } else if (what == "cancel") {
    notice.kind = WorkNotice::Kind::kCancel;
  } else {
    return std::nullopt;
  }
  return notice;
}

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
      options_.on_work(WorkNotice{});  // kAll: what was announced while nobody listened
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
