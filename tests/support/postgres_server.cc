#include "tests/support/postgres_server.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "tests/support/ports.h"
#include "tests/support/subprocess.h"

namespace manifold::test {
namespace {

constexpr const char* kBin = "/usr/lib/postgresql/15/bin/";

}  // namespace

PostgresServer::~PostgresServer() { Stop(); }

Status PostgresServer::RunAsOwner(const std::vector<std::string>& argv, int timeout_s) {
  std::vector<std::string> command;
  if (geteuid() == 0) command = {"runuser", "-u", "postgres", "--"};
  command.insert(command.end(), argv.begin(), argv.end());
  CommandResult result = RunCommand(command, std::chrono::seconds(timeout_s));
  if (result.exit_code != 0) {
    return Status::Unavailable(argv[0] + " exited with " + std::to_string(result.exit_code) + ": " +
                               result.output);
  }
  return Status::Ok();
}

Status PostgresServer::MakeDir() {
  dir_ = std::make_unique<TempDir>("manifold-pg");
  if (geteuid() == 0) {
    CommandResult chown =
        RunCommand({"chown", "-R", "postgres:postgres", dir_->path()}, std::chrono::seconds(10));
    if (chown.exit_code != 0) return Status::Internal("chown failed: " + chown.output);
  }
  port_ = FreeTcpPort();
  return Status::Ok();
}

Status PostgresServer::StartStandbyOf(const PostgresServer& primary) {
  database_ = primary.database_;
  if (Status s = MakeDir(); !s.ok()) return s;
  // -R writes standby.signal and primary_conninfo; -X stream copies the WAL the backup needs;
  // a fast checkpoint starts it at once (a spread one waits minutes).
  if (Status s =
          RunAsOwner({std::string(kBin) + "pg_basebackup", "-h", "127.0.0.1", "-p",
                      std::to_string(primary.port_), "-U", "postgres", "-D", dir_->path() + "/data",
                      "-R", "-X", "stream", "--no-sync", "--checkpoint=fast"},
                     60);
      !s.ok()) {
    return s;
  }
  return Restart();
}

Status PostgresServer::Promote() {
  return RunAsOwner(
      {std::string(kBin) + "pg_ctl", "-D", dir_->path() + "/data", "-w", "-t", "30", "promote"},
      45);
}

Status PostgresServer::Start(const std::string& database) {
  database_ = database;
  if (Status s = MakeDir(); !s.ok()) return s;
  std::string data = dir_->path() + "/data";
  if (Status s = RunAsOwner({std::string(kBin) + "initdb", "-D", data, "-U", "postgres",
                             "--auth=trust", "--no-sync", "-E", "UTF8"},
                            60);
      !s.ok()) {
    return s;
  }
  if (Status s = Restart(); !s.ok()) return s;
  return RunAsOwner({std::string(kBin) + "createdb", "-h", "127.0.0.1", "-p", std::to_string(port_),
                     "-U", "postgres", database_},
                    30);
}

Status PostgresServer::Restart() {
  if (running_) Stop();
  Status started = RunAsOwner({std::string(kBin) + "pg_ctl", "-D", dir_->path() + "/data", "-l",
                               dir_->path() + "/postgres.log", "-w", "-t", "30", "-o",
                               "-p " + std::to_string(port_) + " -k " + dir_->path() +
                                   " -c listen_addresses=127.0.0.1 -c fsync=off",
                               "start"},
                              45);
  running_ = started.ok();
  return started;
}

void PostgresServer::Stop() {
  if (!running_) return;
  running_ = false;
  Status stopped = RunAsOwner({std::string(kBin) + "pg_ctl", "-D", dir_->path() + "/data", "-m",
                               "fast", "-w", "-t", "30", "stop"},
                              45);
  // The test has its answer already; a server that would not stop is only reported.
  if (!stopped.ok()) std::fprintf(stderr, "postgres: stop failed: %s\n", stopped.message().c_str());
}

std::string PostgresServer::url() const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + database_;
}

}  // namespace manifold::test
