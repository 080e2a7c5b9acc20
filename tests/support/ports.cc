#include "tests/support/ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <mutex>
#include <random>

namespace manifold::test {
namespace {

// The first port the kernel hands out by itself (to connect() and to bind() on port 0).
int FirstEphemeralPort() {
  std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  if (!(range >> low) || low <= 1024) return 32768;
  return low;
}

// Whether 127.0.0.1:port can be bound now.
bool CanBind(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  bool bound = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  close(fd);
  return bound;
}

}  // namespace

// Below the ephemeral range: a port taken from it stays free only until some connection on
// the machine gets it as its source port, which happened between a farm choosing its API
// port and the coordinator binding it seconds later.
int FreeTcpPort() {
  static std::mutex mutex;
  static std::mt19937 random(std::random_device{}());
  const int high = FirstEphemeralPort() - 1;
  const int low = std::min(10000, high / 2);
  std::lock_guard lock(mutex);
  std::uniform_int_distribution<int> pick(low, high);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    int port = pick(random);
    if (CanBind(port)) return port;
  }
  return -1;
}

}  // namespace manifold::test
