#include "cli/build.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string_view>

#include "cli/context_spool.h"
#include "cli/follow.h"
#include "cli/format.h"
#include "cli/git_source.h"
#include "cli/log_printer.h"
#include "cli/metadata.h"
#include "cli/progress_view.h"
#include "common/dockerignore.h"
#include "common/platform.h"
#include "common/reference.h"
#include "common/registry_cache.h"
#include "common/resource_units.h"
#include "common/strings.h"
#include "common/validate.h"

namespace manifold {
namespace {

namespace fs = std::filesystem;

// Everything RunBuild checks before talking to the coordinator.
// Build secrets go to a coordinator over TLS, or over plain HTTP only when it is on this
// host (the loopback network), where no one on the wire can read them.
bool SecretsMayTravelTo(const std::string& server) {
  const std::string plain = "http://";
  if (server.rfind(plain, 0) != 0) return true;
  std::string host = server.substr(plain.size());
  return IsLoopbackRegistry(host.substr(0, host.find('/')));
}

struct LocalBuild {
  BuildSubmission request;
  std::string context_dir;
};

Status CheckContextDir(const std::string& dir) {
  std::error_code error;
  fs::file_status status = fs::status(dir, error);
  if (error || !fs::exists(status)) {
    return Status::InvalidArgument("build context " + dir +
                                   " does not exist; give the directory to build as the last "
                                   "argument");
  }
  if (!fs::is_directory(status)) {
    return Status::InvalidArgument("build context " + dir + " is not a directory");
  }
  return Status::Ok();
}

Result<std::string> ReadDockerfile(const std::string& path) {
  auto cannot = [&path](const std::string& reason) {
    return Status::InvalidArgument("cannot read Dockerfile " + path + ": " + reason +
                                   " (use -f to name another)");
  };
  std::error_code error;
  if (fs::is_directory(path, error)) return cannot("it is a directory");
  std::ifstream file(path, std::ios::binary);
  if (!file) return cannot(std::strerror(errno));
  std::ostringstream contents;
  contents << file.rdbuf();
  if (file.bad()) return cannot(std::strerror(errno));
  std::string text = contents.str();
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return cannot("it is empty");
  return text;
}

// The Dockerfile's path as the coordinator shows it: relative to the context when it lies
// inside, else its file name (a Dockerfile outside the context travels only as text).
std::string DockerfilePathForRequest(const std::string& context_dir, const std::string& path) {
  std::error_code error;
  fs::path dir = fs::weakly_canonical(fs::absolute(context_dir, error), error);
  fs::path file = fs::weakly_canonical(fs::absolute(path, error), error);
  fs::path relative = file.lexically_relative(dir);
  if (!relative.empty() && *relative.begin() != ".." && relative != ".") {
    return relative.generic_string();
  }
  return fs::path(path).filename().generic_string();
}

Result<std::string> ReadDockerfileFromStdin(std::istream* in) {
  if (in == nullptr) return Status::InvalidArgument("-f - needs the Dockerfile on stdin");
  std::ostringstream contents;
  contents << in->rdbuf();
  std::string text = contents.str();
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Status::InvalidArgument(
        "the Dockerfile read from stdin (-f -) is empty; pipe one in, e.g. "
        "`manifold build -f - DIR < Dockerfile`");
  }
  return text;
}

// --network, --allow and --job-*, checked as the coordinator checks them, so that a
// refusal costs no upload.
Status ParseSandboxOptions(const BuildOptions& options, BuildSubmission* request) {
  Result<std::string> network = ParseBuildNetwork(options.network);
  if (!network.ok()) return network.status();
  request->network = *network;
  for (const std::string& name : options.allow) {
    if (Status s = ValidateEntitlement(name); !s.ok()) return s;
    auto& names = request->entitlements;
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  if (Status s = CheckNetworkEntitlement(request->network, request->entitlements); !s.ok()) {
    return s;
  }
  const struct {
    const char* flag;
    const std::string& text;
    Result<uint64_t> (*parse)(std::string_view, std::string_view);
    uint64_t* limit;
  } sizes[] = {
      {"--job-memory", options.job_memory, ParseByteSize, &request->limits.memory_bytes},
      {"--job-disk", options.job_disk, ParseByteSize, &request->limits.disk_bytes},
      {"--job-cpus", options.job_cpus, ParseCpuMillis, &request->limits.cpu_millis},
  };
  for (const auto& size : sizes) {
    if (size.text.empty()) continue;
    Result<uint64_t> value = size.parse(size.flag, size.text);
    if (!value.ok()) return value.status();
    *size.limit = *value;
  }
  request->limits.pids = options.job_pids;
  return Status::Ok();
}

// --cache-from and --cache-to, checked as the coordinator checks them.
Status ParseCacheOptions(const BuildOptions& options, BuildSubmission* request) {
  for (const std::string& text : options.cache_from) {
    Result<CacheOption> option = ParseCacheOption(text, /*to=*/false);
    if (!option.ok()) return option.status();
    request->cache_from.push_back(option->ref);
  }
  if (options.cache_to.size() > 1) {
    return Status::InvalidArgument(
        "--cache-to is given more than once; give one registry ref (each platform gets its "
        "own repository under it)");
  }
  for (const std::string& text : options.cache_to) {
    Result<CacheOption> option = ParseCacheOption(text, /*to=*/true);
    if (!option.ok()) return option.status();
    request->cache_to = option->ref;
    request->cache_mode = option->mode;
  }
  return Status::Ok();
}

Result<LocalBuild> PrepareBuild(const BuildOptions& options, const EnvLookup& env) {
  LocalBuild build;
  Result<std::vector<Platform>> platforms = ParsePlatformList(Join(options.platforms, ","));
  if (!platforms.ok()) {
    if (options.platforms.empty()) {
      return Status::InvalidArgument(
          "no platform given: use --platform, e.g. --platform linux/amd64,linux/arm64");
    }
    return platforms.status();
  }
  for (const Platform& platform : *platforms)
    build.request.platforms.push_back(platform.ToString());

  if (options.tags.empty()) {
    return Status::InvalidArgument(
        "no tag given: name the image with -t REGISTRY/REPOSITORY:TAG (manifold always pushes "
        "the result)");
  }
  for (const std::string& tag : options.tags) {
    Result<Reference> reference = ParseReference(tag);
    if (!reference.ok()) return reference.status();
    if (!reference->digest.empty()) {
      return Status::InvalidArgument("invalid tag \"" + tag +
                                     "\": a tag cannot name a digest; use REPOSITORY:TAG");
    }
    build.request.tags.push_back(tag);
  }

  if (options.context_dir.empty()) {
    return Status::InvalidArgument("no build context given: name the directory to build");
  }
  Status status = CheckContextDir(options.context_dir);
  if (!status.ok()) return status;
  build.context_dir = options.context_dir;

  std::string dockerfile = options.dockerfile;
  if (dockerfile.empty()) dockerfile = (fs::path(options.context_dir) / "Dockerfile").string();
  bool from_stdin = dockerfile == "-";
  Result<std::string> text =
      from_stdin ? ReadDockerfileFromStdin(options.dockerfile_stdin) : ReadDockerfile(dockerfile);
  if (!text.ok()) return text.status();
  build.request.dockerfile = std::move(text).value();
  build.request.dockerfile_path =
      from_stdin ? "-" : DockerfilePathForRequest(options.context_dir, dockerfile);

  Result<std::map<std::string, std::string>> args = ParseBuildArgs(options.build_args, env);
  if (!args.ok()) return args.status();
  build.request.build_args = std::move(args).value();
  build.request.target = options.target;
  build.request.emulation = options.emulation;
  Result<std::map<std::string, std::string>> labels = ParseLabels(options.labels);
  if (!labels.ok()) return labels.status();
  build.request.labels = std::move(labels).value();
  Result<Annotations> annotations = ParseAnnotations(options.annotations);
  if (!annotations.ok()) return annotations.status();
  build.request.manifest_annotations = std::move(annotations->manifest);
  build.request.index_annotations = std::move(annotations->index);
  build.request.no_cache = options.no_cache;
  build.request.pull = options.pull;
  Result<std::map<std::string, std::string>> secrets = ParseSecrets(options.secrets, env);
  if (!secrets.ok()) return secrets.status();
  build.request.secrets = std::move(secrets).value();
  if (Status s = ParseSandboxOptions(options, &build.request); !s.ok()) return s;
  if (Status s = ParseCacheOptions(options, &build.request); !s.ok()) return s;
  // index:org.opencontainers.image.source=... (or .revision) overrides these on the
  // coordinator, which applies index_annotations last.
  GitSource git = DetectGitSource(options.context_dir, from_stdin ? "" : dockerfile);
  build.request.source = git.url;
  build.request.revision = git.revision;
  return build;
}

std::string HumanSize(uint64_t bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double size = static_cast<double>(bytes);
  size_t unit = 0;
  while (size >= 1024 && unit + 1 < std::size(units)) {
    size /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", size, units[unit]);
  return text;
}

// "data/ (2.9 GiB), model.bin (300.0 MiB), ...": the context's top-level entries that
// are packed (what `exclude` leaves in), largest first, at most five.
std::string LargestEntries(const std::string& context_dir,
                           const std::function<bool(const std::string&, bool)>& exclude) {
  std::map<std::string, uint64_t> sizes;
  std::error_code error;
  fs::recursive_directory_iterator it(context_dir, fs::directory_options::skip_permission_denied,
                                      error);
  for (; !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
    fs::path relative = it->path().lexically_relative(context_dir);
    std::error_code entry_error;  // an unreadable entry counts as empty, the walk goes on
    bool is_dir = it->is_directory(entry_error) && !it->is_symlink(entry_error);
    if (exclude && exclude(relative.generic_string(), is_dir)) {
      if (is_dir) it.disable_recursion_pending();
      continue;
    }
    std::string top = relative.begin()->string();
    if (is_dir || relative.begin() != std::prev(relative.end())) top += "/";
    uint64_t size = it->is_regular_file(entry_error) && !it->is_symlink(entry_error)
                        ? it->file_size(entry_error)
                        : 0;
    sizes[top] += entry_error ? 0 : size;
  }
  std::vector<std::pair<std::string, uint64_t>> largest(sizes.begin(), sizes.end());
  std::stable_sort(largest.begin(), largest.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string text;
  for (size_t i = 0; i < largest.size() && i < 5; ++i) {
    if (!text.empty()) text += ", ";
    text += largest[i].first + " (" + HumanSize(largest[i].second) + ")";
  }
  return text;
}

}  // namespace

std::string BuildFailureMessage(const BuildInfo& build) {
  std::string reason = build.error;
  if (reason.empty()) {
    std::vector<std::string> failures;
    for (const JobInfo& job : build.jobs) {
      if (job.state == "failed") {
        failures.push_back(job.platform + ": " + (job.error.empty() ? "failed" : job.error));
      }
    }
    reason = failures.empty() ? "no reason given by the coordinator" : Join(failures, "; ");
  }
  return "build " + std::to_string(build.id) + " failed: " + reason;
}

int RunBuild(const BuildOptions& options, const EnvLookup& env, std::ostream* out,
             std::ostream* err) {
  auto fail = [err](const Status& status) { return PrintFailure(err, status); };
  if (options.progress != "auto" && options.progress != "plain" && options.progress != "quiet" &&
      options.progress != "tty") {
    return fail(Status::InvalidArgument("invalid --progress \"" + options.progress +
                                        "\": use auto, plain, tty or quiet"));
  }
  bool quiet = options.progress == "quiet";
  Result<std::string> server = NormalizeServerUrl(options.server);
  if (!server.ok()) return fail(server.status());

  Result<LocalBuild> local = PrepareBuild(options, env);
  if (!local.ok()) return fail(local.status());
  BuildSubmission& request = local->request;
  if (!request.secrets.empty() && !SecretsMayTravelTo(*server)) {
    return fail(Status::InvalidArgument(
        "refusing to send build secrets over plain HTTP to " + *server +
        ", which is not on this host; use the coordinator's https:// address"));
  }

  // .dockerignore is applied here, so what it leaves out is never uploaded.
  Result<DockerIgnore> ignore = DockerIgnore::Load(local->context_dir);
  if (!ignore.ok()) return fail(ignore.status());
  auto exclude = [&](const std::string& path, bool is_dir) {
    return ignore->Excluded(path) && !(is_dir && ignore->MayReincludeUnder(path));
  };
  std::function<bool(const std::string&, bool)> exclude_function;
  if (!ignore->empty()) exclude_function = exclude;
  // Packed to a nameless temp file while hashed: the digest names the upload, which then
  // streams from the file, so no part of the CLI holds the whole context.
  Result<ContextSpool> spool = ContextSpool::Pack(local->context_dir, exclude_function,
                                                  SpoolDirectory(env), options.context_limit_bytes);
  if (!spool.ok()) {
    return fail(spool.status().WithContext("cannot pack the build context " + local->context_dir));
  }
  request.context = spool->digest();
  const uint64_t packed_size = spool->size();
  std::string dockerignore = (fs::path(local->context_dir) / ".dockerignore").string();
  if (packed_size > options.context_limit_bytes) {
    return fail(Status::InvalidArgument(
        "the build context " + local->context_dir + " packs to " + HumanSize(packed_size) +
        ", above the limit of " + HumanSize(options.context_limit_bytes) +
        "; its largest entries are " + LargestEntries(local->context_dir, exclude_function) +
        ": add what the build does not need to " + dockerignore +
        " (one pattern a line, e.g. the name of a directory)"));
  }
  // Asked before anything is printed, so an unreachable coordinator is one line of output.
  ApiClient api(*server);
  Result<bool> present = api.HasContext(request.context);
  if (!present.ok()) return fail(present.status());
  if (!quiet) {
    *out << "context: " << packed_size << " bytes (" << HumanSize(packed_size) << "), digest "
         << request.context << "\n";
    out->flush();
  }
  if (packed_size > options.context_warn_bytes) {
    *err << "manifold: warning: the build context is " << HumanSize(packed_size) << ", more than "
         << HumanSize(options.context_warn_bytes)
         << "; every build uploads and unpacks it. Largest entries: "
         << LargestEntries(local->context_dir, exclude_function)
         << "; add what the build does not need to " << dockerignore << "\n";
    err->flush();
  }

  if (!*present) {
    Status uploaded = api.UploadContext(request.context, spool->fd());
    if (!uploaded.ok()) return fail(uploaded);
  }
  if (!quiet) {
    *out << "context " << (*present ? "already on the coordinator" : "uploaded") << "\n";
  }
  Result<BuildInfo> submitted = api.SubmitBuild(request, options.idempotency_key);
  if (!submitted.ok() && *present) {
    // The coordinator had the context at the check, but may have collected it (or found it
    // damaged) by the submission: upload it again and submit once more, under the same
    // idempotency key, rather than fail the CI job.
    Result<bool> still_present = api.HasContext(request.context);
    if (still_present.ok() && !*still_present) {
      Status uploaded = api.UploadContext(request.context, spool->fd());
      if (!uploaded.ok()) return fail(uploaded);
      submitted = api.SubmitBuild(request, options.idempotency_key);
    }
  }
  spool->Release();  // the build may run for an hour; do not hold the temp file meanwhile
  if (!submitted.ok()) return fail(submitted.status());
  if (!quiet) {
    *out << "build " << submitted->id << " submitted\n";
    out->flush();
  }

  FollowOptions follow;
  follow.print_logs = !quiet;
  follow.print_job_changes = !quiet;
  follow.interval = options.poll_interval;
  follow.unavailable_grace = options.unavailable_grace;
  follow.interrupted = options.interrupted;
  LogPrinter printer(out);
  std::optional<ProgressView> view;
  if (options.progress == "tty") {
    view.emplace(out, TerminalWidth(STDOUT_FILENO));
    follow.view = &*view;
  }
  Result<BuildInfo> final_build =
      FollowBuild(api, submitted->id, follow, quiet || view ? nullptr : &printer, err);
  if (!final_build.ok() && final_build.status().code() == Status::Code::kCanceled) {
    std::string id = std::to_string(submitted->id);
    if (options.detach) {
      *err << "manifold: stopped following build " << id << "; it goes on (`manifold logs -f " << id
           << "` to follow it again, `manifold cancel " << id << "` to stop it)\n";
      return kInterruptedExit;
    }
    Result<BuildInfo> canceled = api.CancelBuild(submitted->id);
    if (!canceled.ok()) return fail(canceled.status().WithContext("canceling build " + id));
    *err << "manifold: build " << id << " canceled\n";
    return kInterruptedExit;
  }
  if (!final_build.ok()) {
    return fail(
        final_build.status().WithContext("following build " + std::to_string(submitted->id)));
  }
  const BuildInfo& build = *final_build;
  if (build.state == "failed") return fail(Status::Internal(BuildFailureMessage(build)));
  if (build.state == "canceled") {
    return fail(Status::Canceled("build " + std::to_string(build.id) + " was canceled"));
  }
  if (build.index_digest.empty()) {
    return fail(Status::Internal("build " + std::to_string(build.id) +
                                 " succeeded but the coordinator reported no index digest; "
                                 "see `manifold status " +
                                 std::to_string(build.id) + "`"));
  }
  if (!options.metadata_file.empty()) {
    Status written = WriteMetadataFile(options.metadata_file, build);
    if (!written.ok()) return fail(written);
  }
  if (!quiet) {
    const std::vector<std::string>& tags = build.tags.empty() ? request.tags : build.tags;
    *out << "index " << build.index_digest << " pushed to " << Join(tags, ", ") << "\n";
  }
  *out << build.index_digest << "\n";
  out->flush();
  return 0;
}

}  // namespace manifold
