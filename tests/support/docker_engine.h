// DockerEngine: a real Docker engine (Debian's `dockerd`) for one test, private to it.
//
// It runs with its own data root, exec root (where its containerd lives), pid file and
// unix socket inside a temporary directory, reads an empty daemon.json instead of the
// host's, and leaves the host's network alone (--iptables=false --bridge=none), so RUN
// steps must use --network=none (or host, which reaches the host's loopback). BuildKit still
// gives each RUN step its own PID, mount, IPC and UTS namespaces. Base images come from a local
// registry given as a Docker Hub mirror, so `FROM busybox` works without internet access. Start
// waits, bounded, until the engine answers /_ping; the destructor stops it and everything it
// started (containerd, shims), unmounts what it left mounted and removes its files, also
// when the test failed. dockerd writes /etc/docker/key.json once per host (Docker 20.10
// has no flag to move it); nothing else outside the directory is touched.
// Used from one thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace manifold::test {

struct DockerEngineOptions {
  // Registries standing in for Docker Hub, as URLs: "http://127.0.0.1:PORT".
  std::vector<std::string> registry_mirrors;
  // "overlay2", "vfs", ...; empty tries overlay2 and falls back to vfs.
  std::string storage_driver;
  std::chrono::seconds start_timeout{60};
};

class DockerEngine {
 public:
  DockerEngine() = default;
  ~DockerEngine();  // Stop()
  DockerEngine(const DockerEngine&) = delete;
  DockerEngine& operator=(const DockerEngine&) = delete;

  // Starts dockerd and waits until it answers. The error carries the end of its log.
  Status Start(const DockerEngineOptions& options = {});
  // SIGTERM and a bounded wait, then SIGKILL to whatever of the engine is left; unmounts
  // and removes its directory. Safe to call twice.
  void Stop();

  // "unix://DIR/docker.sock", as DOCKER_HOST and skopeo's --src-daemon-host take it.
  std::string host() const;
  std::string socket_path() const;
  const std::string& storage_driver() const { return storage_driver_; }
  // Whether GET /_ping on the socket answers 200 right now.
  bool Ping() const;
  std::string LogTail(size_t max_bytes = 4096) const;

 private:
  Status Launch(const std::string& driver, const DockerEngineOptions& options);
  // SIGKILL to every process whose command line names this engine's directory.
  void KillLeftovers() const;
  void UnmountAll() const;

  std::unique_ptr<TempDir> dir_;
  Subprocess process_;
  std::string storage_driver_;
};

}  // namespace manifold::test
