#include "tests/support/farm.h"

#include <sys/stat.h>

#include <fstream>
#include <memory>

#include "tests/support/ports.h"

namespace manifold::test {

std::string SourceDir() {
#ifdef MANIFOLD_SOURCE_DIR
  return MANIFOLD_SOURCE_DIR;
#else
  return ".";
#endif
}

std::string BinaryDir() {
#ifdef MANIFOLD_BINARY_DIR
  return MANIFOLD_BINARY_DIR;
#else
  return "build";
#endif
}

Farm::~Farm() { Down(); }

std::map<std::string, std::string> Farm::Env() const {
  std::map<std::string, std::string> env = ports_;
  env["MANIFOLD_FARM_DIR"] = dir_->path() + "/farm";
  env["MANIFOLD_BUILD_DIR"] = BinaryDir();
  return env;
}

Status Farm::Up(std::chrono::seconds timeout) {
  dir_ = std::make_unique<TempDir>("manifold-farm");
  // PostgreSQL runs as its own user, which must be able to reach its data dir inside.
  chmod(dir_->path().c_str(), 0755);
  ports_ = {{"MANIFOLD_FARM_PG_PORT", std::to_string(FreeTcpPort())},
            {"MANIFOLD_FARM_REGISTRY_PORT", std::to_string(FreeTcpPort())},
            {"MANIFOLD_FARM_API_PORT", std::to_string(FreeTcpPort())},
            {"MANIFOLD_FARM_AGENT_PORT", std::to_string(FreeTcpPort())}};
  up_ = true;  // from here on, Down() has something to stop even if `up` fails half-way
  CommandResult result =
      RunCommand({SourceDir() + "/ops/farm.sh", "up"},
                 std::chrono::duration_cast<std::chrono::milliseconds>(timeout), Env());
  if (result.exit_code != 0) {
    return Status::Unavailable("ops/farm.sh up exited with " + std::to_string(result.exit_code) +
                               ":\n" + result.output);
  }
  std::ifstream env_file(dir_->path() + "/farm/farm.env");
  std::string line;
  while (std::getline(env_file, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "MANIFOLD_SERVER") server_url_ = value;
    if (key == "MANIFOLD_REGISTRY") registry_ = value;
    if (key == "MANIFOLD_DATABASE_URL") database_url_ = value;
  }
  if (server_url_.empty() || registry_.empty() || database_url_.empty()) {
    return Status::Internal(
        "farm.env lacks MANIFOLD_SERVER, MANIFOLD_REGISTRY or "
        "MANIFOLD_DATABASE_URL:\n" +
        result.output);
  }
  return Status::Ok();
}

void Farm::Down() {
  if (!up_) return;
  up_ = false;
  RunCommand({SourceDir() + "/ops/farm.sh", "down"}, std::chrono::seconds(90), Env());
}

CommandResult Farm::Manifold(const std::vector<std::string>& args,
                             std::chrono::seconds timeout) const {
  std::vector<std::string> argv = {BinaryDir() + "/cli/manifold"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, std::chrono::duration_cast<std::chrono::milliseconds>(timeout),
                    {{"MANIFOLD_SERVER", server_url_}});
}

std::string Farm::LogTail(const std::string& name) const {
  return ReadFileTail(dir_->path() + "/farm/logs/" + name + ".log", 4096);
}

}  // namespace manifold::test
