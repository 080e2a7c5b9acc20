#include "agent/tool_command.h"

#include <filesystem>
#include <system_error>

namespace manifold {

namespace {

bool NeedsQuoting(const std::string& arg) {
  if (arg.empty()) return true;
  for (char c : arg) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 std::string_view("_./:=@,+-").find(c) != std::string_view::npos;
    if (!plain) return true;
  }
  return false;
}

// "<what> exited with status N: <last line>".
std::string ExitMessage(const std::string& what, int exit_code, const OutputTail& tail) {
  std::string message = what + " exited with status " + std::to_string(exit_code);
  if (std::string last = tail.LastLine(); !last.empty()) message += ": " + last;
  return message;
}

}  // namespace

void OutputTail::Add(std::string_view data) {
  tail_.append(data);
  if (tail_.size() > 2 * kKeep) tail_.erase(0, tail_.size() - kKeep);
}

std::string OutputTail::LastLine() const {
  size_t end = tail_.find_last_not_of(" \t\r\n");
  if (end == std::string::npos) return "";
  size_t start = tail_.rfind('\n', end);
  start = (start == std::string::npos) ? 0 : start + 1;
  std::string line = tail_.substr(start, end + 1 - start);
  constexpr size_t kMaxLine = 300;
  if (line.size() > kMaxLine) line = line.substr(0, kMaxLine) + "...";
  return line;
}

std::string ShellCommandLine(const std::vector<std::string>& argv) {
  std::string line;
  for (const std::string& arg : argv) {
    if (!line.empty()) line += ' ';
    if (!NeedsQuoting(arg)) {
      line += arg;
      continue;
    }
    line += '\'';
    for (char c : arg) {
      if (c == '\'') {
        line += "'\\''";
      } else {
        line += c;
      }
    }
    line += '\'';
  }
  return line;
}

Status CheckBuildRequest(const BuildRequest& request) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (request.platform.os.empty() || request.platform.architecture.empty()) {
    return Status::InvalidArgument("build request has no platform");
  }
  if (request.image_name.empty()) {
    return Status::InvalidArgument("build request has no local image name");
  }
  if (!fs::is_directory(request.context_dir, ec)) {
    return Status::InvalidArgument("build context directory '" + request.context_dir +
                                   "' does not exist or is not a directory");
  }
  if (!fs::is_regular_file(request.dockerfile_path, ec)) {
    return Status::InvalidArgument("Dockerfile '" + request.dockerfile_path +
                                   "' does not exist or is not a file");
  }
  if (request.layout_dir.empty()) {
    return Status::InvalidArgument("build request has no OCI layout directory");
  }
  // The "oci:PATH:TAG" syntax of buildah and skopeo cannot carry a ':' inside PATH.
  if (request.layout_dir.find(':') != std::string::npos) {
    return Status::InvalidArgument("OCI layout directory '" + request.layout_dir +
                                   "' contains ':', which an oci: image reference cannot "
                                   "address");
  }
  // A layout that already holds an image would end up with two manifests.
  if (fs::exists(request.layout_dir, ec) &&
      (!fs::is_directory(request.layout_dir, ec) || !fs::is_empty(request.layout_dir, ec))) {
    return Status::FailedPrecondition("OCI layout directory '" + request.layout_dir +
                                      "' already exists and is not empty; use a fresh "
                                      "directory for each build");
  }
  return Status::Ok();
}

void AppendBuildOptions(const BuildRequest& request, std::vector<std::string>* argv) {
  for (const auto& [key, value] : request.build_args) {
    argv->push_back("--build-arg");
    argv->push_back(key + "=" + value);
  }
  if (!request.target.empty()) {
    argv->push_back("--target");
    argv->push_back(request.target);
  }
  for (const auto& [key, value] : request.labels) {
    argv->push_back("--label");
    argv->push_back(key + "=" + value);
  }
  if (request.no_cache) argv->push_back("--no-cache");
  for (const auto& [id, file] : request.secret_files) {
    argv->push_back("--secret");
    argv->push_back("id=" + id + ",src=" + file);
  }
}

Status RunBuildStep(CommandRunner& runner, const CommandSpec& spec, const std::string& what,
                    const std::function<void(std::string_view output)>& on_output,
                    const std::atomic<bool>* cancel) {
  auto emit = [&](std::string_view text) {
    if (on_output) on_output(text);
  };
  if (cancel != nullptr && cancel->load()) return Status::Canceled(what + ": canceled");
  emit("manifold: " + ShellCommandLine(spec.argv) + "\n");
  OutputTail tail;
  Result<int> exit_code = runner.Run(
      spec,
      [&](std::string_view chunk) {
        tail.Add(chunk);
        emit(chunk);
      },
      cancel);
  if (!exit_code.ok()) return exit_code.status().WithContext(what);
  if (*exit_code != 0) return Status::Internal(ExitMessage(what, *exit_code, tail));
  return Status::Ok();
}

void RunHousekeepingCommand(CommandRunner& runner, const CommandSpec& spec,
                            const std::function<void(std::string_view output)>& on_output) {
  if (on_output) on_output("manifold: " + ShellCommandLine(spec.argv) + "\n");
  (void)runner.Run(spec, {}, nullptr);
}

Status RunCheckCommand(CommandRunner& runner, const CommandSpec& spec, const std::string& tool,
                       const std::string& install_hint, std::string* output) {
  OutputTail tail;
  std::string all;
  Result<int> exit_code = runner.Run(
      spec,
      [&](std::string_view chunk) {
        tail.Add(chunk);
        if (output != nullptr && all.size() < OutputTail::kKeep) all.append(chunk);
      },
      nullptr);
  if (output != nullptr) *output = all;
  if (!exit_code.ok()) {
    return Status::FailedPrecondition(tool + " is not usable on this host: " +
                                      exit_code.status().message() + "; " + install_hint);
  }
  if (*exit_code != 0) {
    return Status::FailedPrecondition(
        ExitMessage("'" + ShellCommandLine(spec.argv) + "'", *exit_code, tail));
  }
  return Status::Ok();
}

}  // namespace manifold
