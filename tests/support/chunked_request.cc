#include "tests/support/chunked_request.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace manifold::test {
namespace {

bool SendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

// Whether the server has said something (an answer, or the end of the connection).
bool Answered(int fd) {
  pollfd item{fd, POLLIN, 0};
  return poll(&item, 1, 0) > 0;
}

// Reads the answer: up to the end of its Content-Length, or of the connection.
Result<ChunkedAnswer> ReadAnswer(int fd) {
  std::string text;
  char buffer[8192];
  size_t head_end = std::string::npos;
  size_t length = std::string::npos;
  for (;;) {
    if (head_end != std::string::npos && length != std::string::npos &&
        text.size() >= head_end + length) {
      break;
    }
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (head_end == std::string::npos && (head_end = text.find("\r\n\r\n")) != std::string::npos) {
      head_end += 4;
      const char* kLength = "\r\ncontent-length:";
      for (size_t i = 0; i + std::strlen(kLength) < head_end; ++i) {
        if (strncasecmp(text.c_str() + i, kLength, std::strlen(kLength)) == 0) {
          length = std::stoul(text.substr(i + std::strlen(kLength)));
          break;
        }
      }
    }
  }
  ChunkedAnswer answer;
  if (head_end == std::string::npos ||
      std::sscanf(text.c_str(), "HTTP/1.%*d %d", &answer.status) != 1) {
    return Status::Unavailable("no HTTP answer (" + std::to_string(text.size()) +
                               " bytes received: " + text.substr(0, 200) + ")");
  }
  answer.body = text.substr(head_end);
  return answer;
}

}  // namespace

Result<ChunkedAnswer> SendChunked(int port, const std::string& method, const std::string& path,
                                  const std::vector<std::pair<std::string, std::string>>& headers,
                                  const std::string& body, size_t chunk_bytes) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Internal("socket: " + std::string(std::strerror(errno)));
  timeval send_timeout{10, 0};
  timeval receive_timeout{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout));
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &receive_timeout, sizeof(receive_timeout));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return Status::Unavailable("cannot connect to 127.0.0.1:" + std::to_string(port));
  }
  std::string head = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& [name, value] : headers) head += name + ": " + value + "\r\n";
  head += "Transfer-Encoding: chunked\r\n\r\n";
  uint64_t sent = 0;
  bool open = SendAll(fd, head);
  while (open && sent < body.size() && !Answered(fd)) {
    size_t size = std::min(chunk_bytes, body.size() - sent);
    char size_line[32];
    std::snprintf(size_line, sizeof(size_line), "%zx\r\n", size);
    open = SendAll(fd, size_line + body.substr(sent, size) + "\r\n");
    if (open) sent += size;
  }
  if (open && sent == body.size()) SendAll(fd, "0\r\n\r\n");
  Result<ChunkedAnswer> answer = ReadAnswer(fd);
  close(fd);
  if (answer.ok()) answer->body_bytes_sent = sent;
  return answer;
}

}  // namespace manifold::test
