// PostgresProxy: a TCP proxy between a client and a real PostgreSQL that can cut a
// connection at its COMMIT, for tests of what a client does when it cannot know whether
// its transaction committed.
//
// It forwards bytes both ways and reads the client's side as the wire protocol's messages
// (the untyped SSL/GSS requests and startup message first, then typed messages). When a
// cut is armed, the next simple-query message whose text is COMMIT either reaches the
// server before both ends are closed (the server commits; the client sees the connection
// drop) or is dropped with both ends (the server rolls back). The server's end is closed
// after its answers are drained, so the server reads the whole COMMIT before it sees the
// end. It listens on 127.0.0.1 at a free port and serves each connection on a thread of
// its own; Stop() (also from the destructor) joins them. Start and Stop from one thread;
// the other methods are thread-safe.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"

namespace manifold::test {

class PostgresProxy {
 public:
  enum class Cut {
    kAfterCommit,      // the server gets the COMMIT, the client never hears its answer
    kInsteadOfCommit,  // neither gets anything more
  };

  PostgresProxy() = default;
  ~PostgresProxy();  // Stop()
  PostgresProxy(const PostgresProxy&) = delete;
  PostgresProxy& operator=(const PostgresProxy&) = delete;

  // Listens and forwards to 127.0.0.1:`upstream_port`.
  Status Start(int upstream_port);
  void Stop();
  int port() const { return port_; }

  // Cuts the connection that sends the next COMMIT. With `after`, only a COMMIT whose
  // connection sent a message containing `after` since its previous COMMIT: the store's
  // writes ask for their transaction's id ("txid_current_if_assigned") before they
  // commit, its reads do not.
  void CutNextCommit(Cut where, std::string after = "");
  // While true, new connections are closed at once: a database that cannot be reached.
  void RefuseConnections(bool refuse) { refuse_ = refuse; }
  // COMMITs cut so far.
  int commits_cut() const { return commits_cut_; }

 private:
  void Accept();
  void Serve(int client);
  // Forwards the complete messages at the front of `pending` (the client's bytes not yet
  // forwarded) to `server`; false once the connection is to be closed.
  // `marked`: whether the connection sent the cut's `after` since its last COMMIT.
  bool ForwardClientMessages(std::string& pending, bool& typed, bool& marked, int server);

  int upstream_port_ = -1;
  int port_ = -1;
  int listener_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> refuse_{false};
  std::atomic<int> commits_cut_{0};
  std::mutex mutex_;
  bool cut_armed_ = false;
  Cut cut_ = Cut::kAfterCommit;
  std::string cut_after_;
  std::thread acceptor_;
  std::vector<std::thread> connections_;
};

}  // namespace manifold::test
