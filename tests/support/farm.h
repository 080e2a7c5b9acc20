// Farm: a complete local manifold farm for one test, started with the same script the
// quickstart uses (ops/farm.sh): PostgreSQL, a registry holding a two-platform base
// image, the coordinator, and one linux/amd64 and one linux/arm64 agent (emulated on an
// x86-64 host). Free loopback ports and a private directory per farm; the destructor
// stops every process, also when the test failed. Not thread-safe; one per test.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace manifold::test {

class Farm {
 public:
  Farm() = default;
  ~Farm();
  Farm(const Farm&) = delete;
  Farm& operator=(const Farm&) = delete;

  // Brings the farm up (bounded by the script's own timeouts and `timeout`).
  Status Up(std::chrono::seconds timeout = std::chrono::seconds(240));
  void Down();

  const std::string& server_url() const { return server_url_; }      // http://127.0.0.1:PORT
  const std::string& registry() const { return registry_; }          // 127.0.0.1:PORT
  const std::string& database_url() const { return database_url_; }  // postgresql://...
  const std::string& dir() const { return dir_->path(); }

  // Runs the `manifold` CLI against this farm.
  CommandResult Manifold(const std::vector<std::string>& args,
                         std::chrono::seconds timeout = std::chrono::seconds(300)) const;
  // The tail of one process's log (coordinator, amd64-1, arm64-1, registry, postgres),
  // for failure messages.
  std::string LogTail(const std::string& name) const;

 private:
  std::map<std::string, std::string> Env() const;

  std::unique_ptr<TempDir> dir_;
  std::map<std::string, std::string> ports_;
  std::string server_url_;
  std::string registry_;
  std::string database_url_;
  bool up_ = false;
};

// Paths of the source tree and the build tree the tests were built from.
std::string SourceDir();
std::string BinaryDir();

}  // namespace manifold::test
