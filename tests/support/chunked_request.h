// SendChunked: an HTTP/1.1 request with a chunked body, written by hand on a TCP socket,
// for what libcurl would not do: keep sending a body that declares no size while watching
// for the server's answer, and stop as soon as it comes.
//
// The request and its answer are read and written on the calling thread; every socket
// wait is bounded (10 s per send, 30 s per read). Thread-safe (nothing is shared).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace manifold::test {

struct ChunkedAnswer {
  int status = 0;
  std::string body;
  // Body bytes written to the socket before the server answered or stopped taking them.
  uint64_t body_bytes_sent = 0;
};

// Sends METHOD PATH to 127.0.0.1:port with `headers` and `body` in chunks of chunk_bytes
// (with Transfer-Encoding: chunked), then reads the answer.
Result<ChunkedAnswer> SendChunked(int port, const std::string& method, const std::string& path,
                                  const std::vector<std::pair<std::string, std::string>>& headers,
                                  const std::string& body, size_t chunk_bytes = 64 << 10);

}  // namespace manifold::test
