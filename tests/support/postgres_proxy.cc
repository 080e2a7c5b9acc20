#include "tests/support/postgres_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstring>

namespace manifold::test {
namespace {

constexpr int kPollMs = 100;  // how often idle threads look whether to stop
// The untyped requests a client may send before its startup message.
constexpr uint32_t kSslRequest = 80877103;
constexpr uint32_t kGssEncRequest = 80877104;

uint32_t ReadInt32(const std::string& bytes, size_t at) {
  uint32_t value;
  std::memcpy(&value, bytes.data() + at, 4);
  return ntohl(value);
}

bool SendAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t sent = send(fd, data, size, MSG_NOSIGNAL);
    if (sent <= 0) return false;
    data += sent;
    size -= static_cast<size_t>(sent);
  }
  return true;
}

bool IsCommit(const std::string& message) {
  // 'Q', length, the query's text, NUL.
  std::string text = message.substr(5, message.size() - 6);
  text.erase(std::remove_if(text.begin(), text.end(),
                            [](unsigned char c) { return std::isspace(c) || c == ';'; }),
             text.end());
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return std::toupper(c); });
  return text == "COMMIT";
}

int ConnectTo(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

PostgresProxy::~PostgresProxy() { Stop(); }

Status PostgresProxy::Start(int upstream_port) {
  upstream_port_ = upstream_port;
  listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      listen(listener_, 16) != 0 ||
      getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    close(listener_);
    listener_ = -1;
    return Status::Unavailable(std::string("proxy cannot listen on 127.0.0.1: ") +
                               std::strerror(errno));
  }
  port_ = ntohs(address.sin_port);
  acceptor_ = std::thread([this] { Accept(); });
  return Status::Ok();
}

void PostgresProxy::Stop() {
  stopping_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  for (std::thread& connection : connections_) connection.join();
  connections_.clear();
  if (listener_ >= 0) close(listener_);
  listener_ = -1;
}

void PostgresProxy::CutNextCommit(Cut where, std::string after) {
  std::lock_guard lock(mutex_);
  cut_armed_ = true;
  cut_ = where;
  cut_after_ = std::move(after);
}

void PostgresProxy::Accept() {
  while (!stopping_) {
    pollfd ready{listener_, POLLIN, 0};
    if (poll(&ready, 1, kPollMs) <= 0) continue;
    // Close-on-exec: a process the test starts meanwhile must not keep the connection open
    // after a cut closes it.
    int client = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    if (refuse_) {
      close(client);
      continue;
    }
    connections_.emplace_back([this, client] { Serve(client); });
  }
}

void PostgresProxy::Serve(int client) {
  int server = ConnectTo(upstream_port_);
  if (server < 0) {
    close(client);
    return;
  }
  std::string pending;  // the client's bytes that do not make a whole message yet
  bool typed = false;   // past the startup message
  bool marked = false;  // sent the cut's `after` since its last COMMIT
  bool cut = false;
  char buffer[65536];
  while (!stopping_ && !cut) {
    pollfd ends[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    if (poll(ends, 2, kPollMs) <= 0) continue;
    if (ends[1].revents != 0) {
      ssize_t n = recv(server, buffer, sizeof buffer, 0);
      if (n <= 0 || !SendAll(client, buffer, static_cast<size_t>(n))) break;
    }
    if (ends[0].revents != 0) {
      ssize_t n = recv(client, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      pending.append(buffer, static_cast<size_t>(n));
      cut = !ForwardClientMessages(pending, typed, marked, server);
    }
  }
  close(client);
  // The server reads what it was sent before the end, then its answers are drained, so
  // it has done with the COMMIT (or rolled back without one) when the proxy lets go.
  shutdown(server, SHUT_WR);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (cut && !stopping_ && std::chrono::steady_clock::now() < give_up) {
    pollfd end{server, POLLIN, 0};
    if (poll(&end, 1, kPollMs) <= 0) continue;
    if (recv(server, buffer, sizeof buffer, 0) <= 0) break;
  }
  close(server);
}

bool PostgresProxy::ForwardClientMessages(std::string& pending, bool& typed, bool& marked,
                                          int server) {
  while (true) {
    const size_t header = typed ? 5 : 4;
    if (pending.size() < header) return true;
    const size_t size = (typed ? 1 : 0) + ReadInt32(pending, typed ? 1 : 0);
    if (pending.size() < size) return true;
    std::string message = pending.substr(0, size);
    pending.erase(0, size);
    if (!typed) {
      uint32_t code = ReadInt32(message, 4);
      typed = code != kSslRequest && code != kGssEncRequest;
    } else if (message[0] == 'Q' && IsCommit(message)) {
      std::lock_guard lock(mutex_);
      const bool wanted = cut_after_.empty() || marked;
      marked = false;
      if (cut_armed_ && wanted) {
        cut_armed_ = false;
        ++commits_cut_;
        if (cut_ == Cut::kAfterCommit) SendAll(server, message.data(), message.size());
        return false;
      }
    } else {
      std::lock_guard lock(mutex_);
      if (!cut_after_.empty() && message.find(cut_after_) != std::string::npos) marked = true;
    }
    if (!SendAll(server, message.data(), message.size())) return false;
  }
}

}  // namespace manifold::test
