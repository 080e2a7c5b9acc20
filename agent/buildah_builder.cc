#include "agent/buildah_builder.h"

#include <filesystem>
#include <system_error>
#include <utility>

namespace manifold {

namespace {

// Keeps the end of a command's output so a failure message can quote buildah's own last
// words ("Error: building at STEP ...") instead of only an exit status.
class OutputTail {
 public:
  static constexpr size_t kKeep = 4096;

  void Add(std::string_view data) {
    tail_.append(data);
    if (tail_.size() > 2 * kKeep) tail_.erase(0, tail_.size() - kKeep);
  }

  // The last non-empty line, shortened to a readable length; "" if there was none.
  std::string LastLine() const {
    size_t end = tail_.find_last_not_of(" \t\r\n");
    if (end == std::string::npos) return "";
    size_t start = tail_.rfind('\n', end);
    start = (start == std::string::npos) ? 0 : start + 1;
    std::string line = tail_.substr(start, end + 1 - start);
    constexpr size_t kMaxLine = 300;
    if (line.size() > kMaxLine) line = line.substr(0, kMaxLine) + "...";
    return line;
  }

 private:
  std::string tail_;
};

bool NeedsQuoting(const std::string& arg) {
  if (arg.empty()) return true;
  for (char c : arg) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 std::string_view("_./:=@,+-").find(c) != std::string_view::npos;
    if (!plain) return true;
  }
  return false;
}

// The command as a person would type it into a shell, for the build log.
std::string CommandLine(const std::vector<std::string>& argv) {
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

Status CheckRequest(const BuildRequest& request) {
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
  // buildah's "oci:PATH:TAG" syntax cannot carry a ':' inside PATH.
  if (request.layout_dir.find(':') != std::string::npos) {
    return Status::InvalidArgument("OCI layout directory '" + request.layout_dir +
                                   "' contains ':', which buildah cannot address");
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

}  // namespace

BuildahBuilder::BuildahBuilder(CommandRunner& runner, std::string buildah_path)
    : runner_(runner), buildah_path_(std::move(buildah_path)) {}

std::string BuildahBuilder::Name() const { return "buildah"; }

std::vector<std::string> BuildahBuilder::BudArgv(const BuildRequest& request) const {
  std::vector<std::string> argv = {buildah_path_, "bud",
                                   "--isolation", "chroot",
                                   "--platform",  request.platform.ToString(),
                                   "-f",          request.dockerfile_path};
  for (const auto& [key, value] : request.build_args) {
    argv.push_back("--build-arg");
    argv.push_back(key + "=" + value);
  }
  if (!request.target.empty()) {
    argv.push_back("--target");
    argv.push_back(request.target);
  }
  for (const auto& [key, value] : request.labels) {
    argv.push_back("--label");
    argv.push_back(key + "=" + value);
  }
  // buildah writes these into the manifest it pushes to the OCI layout, which is the
  // manifest manifold pushes, so they reach the registry unchanged.
  for (const auto& [key, value] : request.annotations) {
    argv.push_back("--annotation");
    argv.push_back(key + "=" + value);
  }
  if (request.no_cache) argv.push_back("--no-cache");
  // buildx's --pull means "always"; buildah's bare --pull only pulls what is missing.
  if (request.pull) argv.push_back("--pull=always");
  argv.push_back("-t");
  argv.push_back(request.image_name);
  argv.push_back(request.context_dir);
  return argv;
}

Status BuildahBuilder::Build(const BuildRequest& request,
                             const std::function<void(std::string_view)>& on_output,
                             const std::atomic<bool>* cancel) {
  if (Status s = CheckRequest(request); !s.ok()) return s;
  const std::string platform = request.platform.ToString();

  auto emit = [&](std::string_view text) {
    if (on_output) on_output(text);
  };
  // Runs one buildah command, logging it first; a non-zero exit becomes Internal because
  // running the same build again gives the same result.
  auto run_step = [&](const std::vector<std::string>& argv, const std::string& what) -> Status {
    if (cancel != nullptr && cancel->load()) return Status::Canceled(what + ": canceled");
    emit("manifold: " + CommandLine(argv) + "\n");
    OutputTail tail;
    Result<int> exit_code = runner_.Run(
        CommandSpec{argv, {}, ""},
        [&](std::string_view chunk) {
          tail.Add(chunk);
          emit(chunk);
        },
        cancel);
    if (!exit_code.ok()) return exit_code.status().WithContext(what);
    if (*exit_code != 0) {
      std::string message = what + " exited with status " + std::to_string(*exit_code);
      if (std::string last = tail.LastLine(); !last.empty()) message += ": " + last;
      return Status::Internal(message);
    }
    return Status::Ok();
  };

  Status built = run_step(BudArgv(request), "buildah bud for " + platform);
  if (!built.ok()) return built;

  Status pushed =
      run_step({buildah_path_, "push", request.image_name, "oci:" + request.layout_dir + ":latest"},
               "buildah push of " + platform + " image to OCI layout '" + request.layout_dir + "'");

  // The image now lives in the layout (or the push failed and the job is over); either
  // way the copy in local storage is garbage. Not cancelable and silent on failure,
  // because it is housekeeping that must not change the build's outcome.
  std::vector<std::string> rmi = {buildah_path_, "rmi", request.image_name};
  emit("manifold: " + CommandLine(rmi) + "\n");
  (void)runner_.Run(CommandSpec{rmi, {}, ""}, {}, nullptr);

  return pushed;
}

Status BuildahBuilder::CheckAvailable(CommandRunner& runner, const std::string& buildah_path) {
  OutputTail tail;
  Result<int> exit_code = runner.Run(
      CommandSpec{{buildah_path, "version"}, {}, ""},
      [&](std::string_view chunk) { tail.Add(chunk); }, nullptr);
  if (!exit_code.ok()) {
    return Status::FailedPrecondition(
        "buildah is not usable on this host: " + exit_code.status().message() +
        "; install buildah 1.28 or later, or give its full path");
  }
  if (*exit_code != 0) {
    std::string message =
        "'" + buildah_path + " version' exited with status " + std::to_string(*exit_code);
    if (std::string last = tail.LastLine(); !last.empty()) message += ": " + last;
    return Status::FailedPrecondition(message);
  }
  return Status::Ok();
}

}  // namespace manifold
