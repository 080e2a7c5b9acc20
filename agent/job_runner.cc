#include "agent/job_runner.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "agent/cache_steps.h"
#include "agent/cache_transfer.h"
#include "agent/secret_files.h"
#include "common/digest.h"
#include "common/http_client.h"
#include "common/layout.h"
#include "common/manifest_annotations.h"
#include "common/oci.h"
#include "common/redact.h"
#include "common/reference.h"
#include "common/registry.h"
#include "common/tar.h"

namespace manifold {

namespace fs = std::filesystem;

namespace {

// Bounds a job's wait for a warm start's load of its cache; past it the job loads its own.
constexpr std::chrono::minutes kWarmStartWait{10};

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// What came of streaming the context: its size, and how unpacking it went.
struct FetchedContext {
  uint64_t bytes = 0;
  Status unpacked = Status::Ok();
};

// A certificate the agent cannot verify is a setting of this agent's to fix, so the
// message says which; the URL is shown without its query, which carries the context grant.
Status ExplainContextFetchFailure(const Status& failure, const std::string& url,
                                  const std::string& ca_file) {
  const std::string& reason = failure.message();
  if (!url.starts_with("https://") || failure.code() != Status::Code::kFailedPrecondition ||
      reason.find("certificate") == std::string::npos) {
    return failure.WithContext("fetching the build context");
  }
  std::string api = RedactUrl(url);
  api.erase(std::min(api.size(), api.find("/v1/contexts/")));
  std::string detail = reason.substr(std::min(reason.size(), reason.find(" failed: ")));
  if (detail.starts_with(" failed: ")) detail.erase(0, 9);
  const std::string fix =
      ca_file.empty()
          ? "If a private CA signed it, give manifold-agent that CA with --ca-file FILE (or "
            "MANIFOLD_CA_FILE), or add it to this host's trusted CAs."
          : "It is not signed by the CA in " + ca_file +
                " (--ca-file), or it does not name the host in that URL: give the CA that "
                "signed the coordinator's certificate, and check its names cover the host of "
                "the coordinator's --public-url.";
  return Status::FailedPrecondition(
      "this agent cannot verify the TLS certificate of the "
      "coordinator's API at " +
      api + " (its --public-url): " + detail + ". " + fix);
}

// Streams the build context into `extractor` as it arrives, hashing it on the way, so
// the agent holds only the piece in flight. The digest is checked before how unpacking
// went: a stream cut or corrupted on the way is Unavailable, which a retry may fix, even
// though the extractor found it broken too. The caller's extractor removes what it wrote
// unless it is finished, which this does only for a stream with the expected digest.
Result<FetchedContext> FetchContext(const AssignMsg& assign, const JobRunnerOptions& options,
                                    TarExtractor* extractor) {
  const uint64_t max_bytes = options.max_context_bytes;
  FetchedContext fetched;
  Sha256 hash;
  HttpRequest request;
  request.url = assign.context_url;
  request.timeout_ms = 600000;
  request.extra_ca_pem = options.api_ca_pem;
  request.response_sink = [&](std::string_view bytes) {
    fetched.bytes += bytes.size();
    if (fetched.bytes > max_bytes) {
      return Status::Internal("the build context is larger than this agent's limit of " +
                              std::to_string(max_bytes) + " bytes");
    }
    hash.Update(bytes);
    // After a refusal the rest is still hashed, to tell a damaged stream from a bad archive.
    if (fetched.unpacked.ok()) fetched.unpacked = extractor->Write(bytes);
    return Status::Ok();
  };
  Result<HttpResponse> response = HttpClient().Send(request);
  if (!response.ok()) {
    return ExplainContextFetchFailure(response.status(), assign.context_url, options.api_ca_file);
  }
  if (response->status != 200) {
    std::string message = "fetching the build context from " + RedactUrl(assign.context_url) +
                          " answered HTTP " + std::to_string(response->status);
    // A 5xx may pass; a 4xx means the coordinator does not have it, which a retry won't fix.
    return response->status >= 500 ? Status::Unavailable(message) : Status::Internal(message);
  }
  std::string digest = hash.Finish();
  if (digest != assign.context_digest) {
    return Status::Unavailable("the build context fetched from " + RedactUrl(assign.context_url) +
                               " has digest " + digest + ", expected " + assign.context_digest);
  }
  if (fetched.unpacked.ok()) fetched.unpacked = extractor->Finish();
  return fetched;
}

}  // namespace

Result<ImageDescriptor> JobRunner::Run(const AssignMsg& assign, JobEvents& events,
                                       const std::atomic<bool>* cancel) {
  Result<ResolvedJob> resolved =
      ResolveJob(options_.policy, assign.network, assign.entitlements, assign.limits);
  if (!resolved.ok()) return resolved.status();
  const std::string name =
      std::to_string(assign.job.job_id) + "-" + std::to_string(assign.job.attempt);
  std::string dir = (fs::path(options_.work_dir) / "jobs" / name).string();
  std::error_code ec;
  fs::remove_all(dir, ec);
  std::unique_ptr<JobDisk> disk;
  if (resolved->limits.disk_bytes != 0) {
    Result<std::unique_ptr<JobDisk>> mounted = JobDisk::Mount(dir, resolved->limits.disk_bytes);
    if (!mounted.ok()) return mounted.status();
    disk = std::move(*mounted);
  } else {
    fs::create_directories(dir, ec);
    if (ec) return Status::Internal("cannot create job directory " + dir + ": " + ec.message());
  }
  std::unique_ptr<JobCgroup> cgroup;
  const JobLimits& limits = resolved->limits;
  if (options_.cgroups != nullptr &&
      (limits.memory_bytes != 0 || limits.cpu_millis != 0 || limits.pids != 0)) {
    Result<std::unique_ptr<JobCgroup>> made = options_.cgroups->Create("job-" + name, limits);
    if (!made.ok()) return made.status();
    cgroup = std::move(*made);
  }
  Result<ImageDescriptor> result =
      RunIn(dir, assign, *resolved, cgroup.get(), disk.get(), events, cancel);
  if (!disk) fs::remove_all(dir, ec);  // the pushed image lives in the registry
  return result;
}

Result<ImageDescriptor> JobRunner::RunIn(const std::string& dir, const AssignMsg& assign,
                                         const ResolvedJob& resolved, const JobCgroup* cgroup,
                                         const JobDisk* disk, JobEvents& events,
                                         const std::atomic<bool>* cancel) {
  auto say = [&](const std::string& line) {
    events.Output(assign.job, "manifold: " + line + "\n");
  };
  const std::string platform = assign.platform.ToString();
  const JobLimits& job_limits = resolved.limits;
  say("job limits: " + DescribeLimits(job_limits) +
      (cgroup == nullptr &&
               (job_limits.memory_bytes != 0 || job_limits.cpu_millis != 0 || job_limits.pids != 0)
           ? " (memory, CPU and process limits are not enforced by this agent's backend)"
           : ""));
  // A failure at the job's disk limit or in its cgroup's limits says which limit it was.
  // The disk: its file system is full, or was when a write into the job's dir failed
  // (whoever wrote may have removed the partial file since); `in_dir`: the failure was a
  // write into the job's dir whatever its message names.
  auto at_limit = [&](const Status& failed, bool in_dir) -> Status {
    std::optional<JobLimit> reached;
    if (disk != nullptr) {
      const std::string& message = failed.message();
      bool enospc = message.find("no space left on device") != std::string::npos ||
                    message.find("No space left on device") != std::string::npos;
      if (disk->Full() || (enospc && (in_dir || message.find(dir + "/") != std::string::npos))) {
        reached = JobLimit::kDisk;
      }
    }
    if (!reached && cgroup != nullptr) reached = cgroup->LimitReached();
    if (!reached) return failed;
    return Status::Internal(LimitReachedMessage(*reached, LimitValue(job_limits, *reached)) + " (" +
                            failed.message() + ")");
  };

  std::string context_dir = dir + "/context";
  ExtractLimits limits;
  limits.max_total_bytes = options_.max_context_bytes * 4;
  TarExtractor extractor(context_dir, limits);
  Result<FetchedContext> context = FetchContext(assign, options_, &extractor);
  if (!context.ok()) return context.status();
  if (!context->unpacked.ok()) {
    return at_limit(context->unpacked.WithContext("unpacking the build context"), true);
  }
  say("fetched build context " + assign.context_digest + " (" + std::to_string(context->bytes) +
      " bytes)");

  // The Dockerfile travels as text, so -f may name a file outside the context.
  std::string dockerfile = dir + "/Dockerfile.manifold";
  {
    std::ofstream out(dockerfile, std::ios::binary);
    out << assign.dockerfile;
    if (!out) return Status::Internal("cannot write " + dockerfile);
  }
  if (cancel != nullptr && *cancel) return Status::Canceled("canceled before the build started");

  events.Phase(assign.job, JobPhase::kBuilding);
  BuildRequest request;
  request.platform = assign.platform;
  request.context_dir = context_dir;
  request.dockerfile_path = dockerfile;
  request.build_args = assign.build_args;
  request.target = assign.target;
  request.labels = assign.labels;
  request.annotations = assign.annotations;
  request.no_cache = assign.no_cache;
  request.pull = assign.pull;
  request.network = resolved.network;
  request.limits = resolved.limits;
  if (cgroup != nullptr) request.cgroup_parent = cgroup->steps_parent();
  // Removed (overwritten first) when this function returns, however the build ends.
  Result<SecretFiles> secrets = SecretFiles::Write(assign.secrets, options_.secrets_dir, dir);
  if (!secrets.ok()) return secrets.status();
  request.secret_files = secrets->files();
  request.image_name = "manifold-job-" + std::to_string(assign.job.job_id) + "-" +
                       std::to_string(assign.job.attempt);
  request.layout_dir = dir + "/layout";
  if (!assign.repositories.empty()) {
    // One name per repository and platform: a newer build of it takes the name over.
    request.cache_name = CacheImageName(assign.repositories.front(), assign.platform);
  }
  // Held until the build ends, so that no pass removes it under the build.
  std::unique_ptr<CacheMounts::Use> cache_mounts;
  if (options_.cache_mounts != nullptr && !assign.repositories.empty()) {
    cache_mounts = options_.cache_mounts->Begin(assign.repositories.front(), assign.platform,
                                                assign.cache, say);
    request.tmp_dir = cache_mounts->tmp_dir();
  }
  PrepareRegistryCache(assign, dir, &request, say);
  auto build_start = std::chrono::steady_clock::now();
  CacheStepCounter cache_steps;
  Status built = builder_.Build(
      request,
      [&](std::string_view output) {
        cache_steps.Add(output);
        events.Output(assign.job, output);
      },
      cancel);
  *secrets = SecretFiles();  // erased as soon as no build step can read them
  cache_mounts.reset();
  if (options_.metrics != nullptr) {
    options_.metrics->ObserveBuild(assign.platform, built.ok() ? "succeeded" : "failed",
                                   SecondsSince(build_start));
    CacheSteps steps = cache_steps.Count();
    options_.metrics->CountCacheSteps(assign.platform, steps.hits, steps.misses);
  }
  if (!built.ok()) return at_limit(built, false);
  NoteHeldCaches();

  events.Phase(assign.job, JobPhase::kPushing);
  Result<OciLayoutImage> image = OpenLayoutImage(request.layout_dir);
  if (!image.ok())
    return image.status().WithContext("reading the image " + builder_.Name() + " wrote");
  // The coordinator lists the image in the index under the job's platform on this agent's
  // word, so an image its config says is for another platform fails here, unpushed.
  Result<std::string> config =
      ReadLayoutBlob(image->dir, image->manifest.config.digest, image->manifest.config.size);
  if (!config.ok()) return config.status().WithContext("reading the image config");
  Result<Platform> built_for = ParseImageConfigPlatform(*config);
  if (!built_for.ok()) return built_for.status().WithContext("the image config");
  if (!(*built_for == assign.platform)) {
    return Status::FailedPrecondition(builder_.Name() + " built an image for " +
                                      built_for->ToString() + " (so says its config) for a " +
                                      platform + " job");
  }
  // The manifest's annotations are the job's, whatever the builder's cache (local, or
  // pulled from a registry) served: a cached image's manifest has those of the build that
  // made it.
  if (Status annotated = AnnotateLayoutImage(request.annotations, &*image); !annotated.ok()) {
    return annotated.WithContext("setting the requested annotations on the " + platform + " image");
  }
  std::optional<ImageDescriptor> pushed;
  // Per registry: one client (its token and connections serve every push there) and the
  // repository pushed to first, from which later repositories mount the blobs rather than
  // receive them again.
  struct RegistryTarget {
    std::unique_ptr<RegistryClient> client;
    std::string first_repository;
  };
  std::map<std::string, RegistryTarget> registries;
  for (const std::string& name : assign.repositories) {
    if (cancel != nullptr && *cancel) return Status::Canceled("canceled during push");
    Result<Reference> target = ParseReference(name);
    if (!target.ok()) return target.status().WithContext("target repository");
    RegistryTarget& to = registries[target->registry];
    if (!to.client) {
      RegistryOptions registry_options = options_.registry_options;
      if (options_.metrics != nullptr) {
        registry_options.on_request = [metrics = options_.metrics, platform = assign.platform](
                                          RegistryOperation operation, long status) {
          metrics->CountRegistryRequest(platform, operation, status);
        };
      }
      to.client = std::make_unique<RegistryClient>(target->registry, registry_options);
    }
    const std::string mount_from = to.first_repository;
    PushStats stats;
    auto push_start = std::chrono::steady_clock::now();
    Result<Descriptor> manifest =
        to.client->PushLayout(*image, target->repository, &stats, nullptr, mount_from);
    if (options_.metrics != nullptr) {
      options_.metrics->ObservePush(assign.platform, manifest.ok() ? "succeeded" : "failed",
                                    SecondsSince(push_start), stats);
    }
    if (!manifest.ok()) {
      return manifest.status().WithContext("pushing the " + platform + " image to " + name);
    }
    say("pushed " + platform + " image to " + name + "@" + manifest->digest + ": " +
        std::to_string(stats.blobs_pushed) + " blob(s) uploaded (" +
        std::to_string(stats.bytes_pushed) + " bytes), " + std::to_string(stats.blobs_skipped) +
        " already present (" + std::to_string(stats.bytes_skipped) + " bytes)" +
        (stats.blobs_mounted > 0
             ? ", " + std::to_string(stats.blobs_mounted) + " mounted from " + mount_from + " (" +
                   std::to_string(stats.bytes_mounted) + " bytes)"
             : ""));
    if (to.first_repository.empty()) to.first_repository = target->repository;
    pushed = ImageDescriptor{manifest->media_type, manifest->digest,
                             static_cast<uint64_t>(manifest->size)};
  }
  if (!pushed) return Status::InvalidArgument("the job names no repository to push to");
  PushCache(assign, request, say);
  return *pushed;
}

void JobRunner::PrepareRegistryCache(const AssignMsg& assign, const std::string& dir,
                                     BuildRequest* request,
                                     const std::function<void(const std::string&)>& say) {
  const RegistryCacheSpec& cache = assign.cache;
  if (cache.from.empty() && cache.to.empty()) return;
  if (!builder_.KeepsRegistryCache()) {
    say("warning: the " + builder_.Name() +
        " backend of this agent (or buildah without --layers) keeps no registry cache; "
        "building without it");
    return;
  }
  const std::string job =
      std::to_string(assign.job.job_id) + "-" + std::to_string(assign.job.attempt);
  if (!cache.from.empty()) {
    // The pulls name the images after the layout's directory: the cache image's name, so
    // that the last one needs no renaming (buildah_cache.h).
    const std::string import_dir = dir + "/cache-in-" + job + "/" +
                                   (request->cache_name.empty() ? "cache" : request->cache_name);
    if (options_.held_caches != nullptr) {
      // A warm start loading one of them is as good as this fetch, and done sooner.
      for (const std::string& ref : cache.from) {
        options_.held_caches->AwaitLoaded(ref, kWarmStartWait);
      }
    }
    CacheFetch fetched =
        FetchRegistryCache(cache, options_.registry_options, options_.held_caches, import_dir, say);
    if (fetched.images > 0) request->cache_import_dir = import_dir;
    cache_loaded_ = std::move(fetched.refs);
    if (options_.metrics != nullptr) {
      options_.metrics->CountCacheBytes(assign.platform, fetched.bytes, 0);
    }
  }
  if (!cache.to.empty()) {
    request->cache_export_dir = dir + "/cache-out";
    request->cache_all_stages = cache.mode == "max";
  }
}

void JobRunner::NoteHeldCaches() const {
  if (options_.held_caches == nullptr) return;
  for (const auto& [ref, images] : cache_loaded_) options_.held_caches->Note(ref, images);
}

void JobRunner::PushCache(const AssignMsg& assign, const BuildRequest& request,
                          const std::function<void(const std::string&)>& say) {
  if (request.cache_export_dir.empty() || !fs::exists(request.cache_export_dir + "/index.json")) {
    return;
  }
  PushStats stats;
  std::vector<std::string> images;
  Status s = PushRegistryCache(request.cache_export_dir, assign.cache.to, options_.registry_options,
                               &stats, &images);
  if (options_.metrics != nullptr) {
    options_.metrics->CountCacheBytes(assign.platform, 0,
                                      static_cast<uint64_t>(stats.bytes_pushed));
  }
  if (!s.ok()) {
    say("warning: registry cache not pushed to " + assign.cache.to + ": " + s.message());
    return;
  }
  if (options_.held_caches != nullptr) options_.held_caches->Note(assign.cache.to, images);
  say("pushed registry cache to " + assign.cache.to + ": " + std::to_string(images.size()) +
      " step image(s), " + std::to_string(stats.blobs_pushed) + " blob(s) uploaded (" +
      std::to_string(stats.bytes_pushed) + " bytes), " + std::to_string(stats.blobs_skipped) +
      " already present");
  cache_pushed_ = assign.cache.to;
}

}  // namespace manifold
