// PostgresServer: a private PostgreSQL 15 for one test, on a free loopback port, in its
// own temporary directory, stopped (and deleted) by the destructor; or a streaming standby
// of another, which can be promoted (a failover).
//
// initdb and postgres refuse to run as root, so when the test runs as root the server
// runs as the `postgres` user (runuser), in a directory that user owns. Not thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "tests/support/temp_dir.h"

namespace manifold::test {

class PostgresServer {
 public:
  PostgresServer() = default;
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // initdb (trust auth), start, create `database`; bounded waits.
  Status Start(const std::string& database = "manifold");
  void Stop();
  // Stops and starts the same data directory again, e.g. to test reconnects.
  Status Restart();
  // A hot standby of `primary` (running), streaming its WAL: pg_basebackup -R, then start.
  Status StartStandbyOf(const PostgresServer& primary);
  // Promotes this standby to a primary that takes writes; waits until it does.
  Status Promote();

  std::string url() const;  // postgresql://postgres@127.0.0.1:PORT/DATABASE
  int port() const { return port_; }

 private:
  // A new temporary directory the server's user owns, and a free port.
  Status MakeDir();
  Status RunAsOwner(const std::vector<std::string>& argv, int timeout_s);

  std::unique_ptr<TempDir> dir_;
  std::string database_;
  int port_ = -1;
  bool running_ = false;
};

}  // namespace manifold::test
