#include "bench/chaos_invariants.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/platform.h"
#include "common/reference.h"

namespace manifold::bench {
namespace {

using nlohmann::json;

std::string Seconds(double s) {
  char text[32];
  snprintf(text, sizeof text, "%.1f s", s);
  return text;
}

std::string Name(const ChaosBuild& build) {
  return "build #" + std::to_string(build.number) +
         (build.id ? " (id " + std::to_string(build.id) + ")" : " (never submitted)");
}

std::string Label(const InjectedFault& fault) {
  return "fault #" + std::to_string(fault.number) + " " + FaultKindName(fault.fault.kind) + " " +
         fault.fault.target;
}

// The faults a build lived through, or else the last one before it.
std::string Describe(const ChaosBuild& build, const std::vector<InjectedFault>& faults,
                     double now) {
  std::vector<const InjectedFault*> during = FaultsDuring(build, faults, now);
  std::string text;
  for (const InjectedFault* fault : during) {
    const double after = fault->began - build.created;
    text += (text.empty() ? "during " : ", ") + Label(*fault) + " (begun " +
            Seconds(std::abs(after)) + (after < 0 ? " before" : " after") + " it was created)";
  }
  if (!text.empty()) return text;
  const InjectedFault* before = nullptr;
  for (const InjectedFault& fault : faults) {
    if (fault.ended < build.created) before = &fault;
  }
  return before == nullptr
             ? "with no fault before or during it"
             : "during no fault; the last before it was " + Label(*before) + ", back " +
                   Seconds(build.created - before->ended) + " before it was created";
}

bool Succeeded(const ChaosBuild& build) { return build.state == "succeeded"; }

// Nearest-rank percentile of `values` (sorted here), 0 when empty.
double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t rank = static_cast<size_t>(std::ceil(p / 100 * values.size()));
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

Result<json> FetchJson(const RegistryClient& registry, const std::string& repository,
                       const std::string& reference) {
  Result<FetchedManifest> manifest = registry.GetManifest(repository, reference);
  if (!manifest.ok()) return manifest.status();
  json parsed = json::parse(manifest->bytes, nullptr, false);
  if (!parsed.is_object()) return Status::Internal(reference + " is not a JSON object");
  return parsed;
}

// What is wrong with the index `digest` of `repository` ("" when nothing).
std::string IndexProblem(const RegistryClient& registry, const std::string& repository,
                         const std::string& digest, const std::vector<std::string>& platforms) {
  Result<json> index = FetchJson(registry, repository, digest);
  if (!index.ok()) return "cannot read its index " + digest + ": " + index.status().message();
  std::multiset<std::string> found;
  for (const json& child : index->value("manifests", json::array())) {
    json platform = child.value("platform", json::object());
    std::string os = platform.value("os", ""), architecture = platform.value("architecture", "");
    std::string digest_of_child = child.value("digest", "");
    found.insert(os + "/" + architecture);
    Result<json> manifest = FetchJson(registry, repository, digest_of_child);
    if (!manifest.ok()) {
      return "cannot read child " + digest_of_child + ": " + manifest.status().message();
    }
    std::string config_digest = manifest->value("config", json::object()).value("digest", "");
    Result<std::string> config = registry.GetBlob(repository, config_digest);
    if (!config.ok()) {
      return "cannot read the config of " + os + "/" + architecture + ": " +
             config.status().message();
    }
    json parsed = json::parse(*config, nullptr, false);
    std::string config_os = parsed.is_object() ? parsed.value("os", "") : "";
    std::string config_arch = parsed.is_object() ? parsed.value("architecture", "") : "";
    if (config_os != os || config_arch != architecture) {
      return "child " + os + "/" + architecture + "'s config says " + config_os + "/" + config_arch;
    }
  }
  std::multiset<std::string> wanted;
  for (const std::string& text : platforms) {
    Result<Platform> platform = ParsePlatform(text);
    wanted.insert(platform.ok() ? platform->os + "/" + platform->architecture : text);
  }
  if (found != wanted) {
    std::string names;
    for (const std::string& name : found) names += (names.empty() ? "" : ", ") + name;
    return "its index holds [" + names + "]";
  }
  return "";
}

}  // namespace

std::vector<const InjectedFault*> FaultsDuring(const ChaosBuild& build,
                                               const std::vector<InjectedFault>& faults,
                                               double now) {
  std::vector<const InjectedFault*> during;
  if (build.created == 0) return during;
  double end = build.finished > 0 ? build.finished : now;
  for (const InjectedFault& fault : faults) {
    if (fault.began <= end && fault.ended >= build.created) during.push_back(&fault);
  }
  return during;
}

InvariantResult CheckBuildsEnd(const std::vector<ChaosBuild>& builds,
                               const std::vector<InjectedFault>& faults, double now,
                               double limit_s) {
  InvariantResult result{"every build ends within " + Seconds(limit_s) + " of its last fault", {}};
  for (const ChaosBuild& build : builds) {
    std::vector<const InjectedFault*> during = FaultsDuring(build, faults, now);
    double last_fault = during.empty() ? build.created : during.back()->began;
    if (build.id == 0) {
      result.violations.push_back(Name(build) +
                                  ": the CLI never submitted it: " + build.cli_outcome);
    } else if (build.finished == 0) {
      result.violations.push_back(Name(build) + " never ended: still " + build.state + " " +
                                  Seconds(now - build.created) + " after it was created, " +
                                  Describe(build, faults, now));
    } else if (!during.empty() && build.finished - last_fault > limit_s) {
      result.violations.push_back(Name(build) + " ended " + Seconds(build.finished - last_fault) +
                                  " after its last fault, " + Describe(build, faults, now));
    }
  }
  return result;
}

InvariantResult CheckNoInfrastructureFailure(const std::vector<ChaosBuild>& builds,
                                             const std::vector<InjectedFault>& faults, double now) {
  InvariantResult result{"no build failed because of an infrastructure fault", {}};
  for (const ChaosBuild& build : builds) {
    if (build.state != "failed" && build.state != "canceled") continue;
    result.violations.push_back(Name(build) + " " + build.state + " " +
                                Describe(build, faults, now) + ": " + build.error);
  }
  return result;
}

InvariantResult CheckIndexes(const std::vector<ChaosBuild>& builds,
                             const std::vector<std::string>& platforms,
                             const RegistryClient& registry) {
  InvariantResult result{"every succeeded build's index holds both platforms, each config right",
                         {}};
  for (const ChaosBuild& build : builds) {
    if (!Succeeded(build)) continue;
    Result<Reference> tag = ParseReference(build.tag);
    std::string problem =
        !tag.ok() ? tag.status().message()
                  : IndexProblem(registry, tag->repository, build.index_digest, platforms);
    if (!problem.empty()) result.violations.push_back(Name(build) + ": " + problem);
  }
  return result;
}

InvariantResult CheckTags(const std::vector<ChaosBuild>& builds, const RegistryClient& registry) {
  InvariantResult result{"every tag holds the index of its last succeeded build", {}};
  std::map<std::string, const ChaosBuild*> last;  // tag -> last succeeded build, or null
  for (const ChaosBuild& build : builds) {
    const ChaosBuild*& entry = last[build.tag];
    if (Succeeded(build) && (entry == nullptr || build.finished > entry->finished)) entry = &build;
  }
  for (const auto& [tag, build] : last) {
    Result<Reference> reference = ParseReference(tag);
    if (!reference.ok()) {
      result.violations.push_back(tag + ": " + reference.status().message());
      continue;
    }
    Result<FetchedManifest> held = registry.GetManifest(reference->repository, reference->tag);
    if (build == nullptr) {
      if (held.ok()) {
        result.violations.push_back(tag + " holds " + held->digest +
                                    " although no build for it succeeded");
      }
    } else if (!held.ok()) {
      result.violations.push_back(tag + " holds nothing readable (" + held.status().message() +
                                  "); " + Name(*build) + " pushed " + build->index_digest);
    } else if (held->digest != build->index_digest) {
      result.violations.push_back(tag + " holds " + held->digest + ", not " + build->index_digest +
                                  " of " + Name(*build) + ", the last to succeed");
    }
  }
  return result;
}

InvariantResult CheckSingleResults(const std::vector<std::string>& jobs_with_two_results) {
  return {"no job has two accepted results", jobs_with_two_results};
}

InvariantResult CheckCliAgrees(const std::vector<ChaosBuild>& builds) {
  InvariantResult result{"the database's state of each build agrees with the CLI's", {}};
  for (const ChaosBuild& build : builds) {
    if (build.id == 0) continue;  // CheckBuildsEnd reports it
    std::vector<std::string> differences;
    if (build.cli_outcome != build.state) {
      differences.push_back("`manifold build` reported '" + build.cli_outcome + "' (exit " +
                            std::to_string(build.cli_exit) + "), the database says '" +
                            build.state + "'");
    } else if (Succeeded(build) && build.cli_digest != build.index_digest) {
      differences.push_back("`manifold build` printed " + build.cli_digest +
                            ", the database holds " + build.index_digest);
    }
    if (build.status_state != build.state) {
      differences.push_back("`manifold status` says '" + build.status_state + "'");
    } else if (build.status_index != build.index_digest) {
      differences.push_back("`manifold status` shows index '" + build.status_index + "'");
    }
    for (const std::string& difference : differences) {
      result.violations.push_back(Name(build) + ": " + difference);
    }
  }
  return result;
}

ChaosFigures ComputeFigures(const std::vector<ChaosBuild>& builds,
                            const std::vector<InjectedFault>& faults, int wrong_tags, double now) {
  ChaosFigures figures;
  figures.wrong_tags = wrong_tags;
  std::vector<double> clean;
  for (const ChaosBuild& build : builds) {
    if (!Succeeded(build)) ++figures.builds_lost;
    if (Succeeded(build) && FaultsDuring(build, faults, now).empty()) {
      clean.push_back(build.finished - build.created);
    }
  }
  figures.clean_builds = static_cast<int>(clean.size());
  figures.clean_median_s = Percentile(clean, 50);
  std::vector<double> added;
  std::map<FaultKind, std::vector<double>> added_by_kind;
  for (const ChaosBuild& build : builds) {
    std::vector<const InjectedFault*> during = FaultsDuring(build, faults, now);
    if (!Succeeded(build) || during.empty()) continue;
    double extra = build.finished - build.created - figures.clean_median_s;
    added.push_back(extra);
    std::set<FaultKind> kinds;
    for (const InjectedFault* fault : during) kinds.insert(fault->fault.kind);
    for (FaultKind kind : kinds) added_by_kind[kind].push_back(extra);
  }
  figures.faulted_builds = static_cast<int>(added.size());
  figures.added_p50_s = Percentile(added, 50);
  figures.added_p99_s = Percentile(added, 99);
  double worst = -1e18;
  for (const auto& [kind, values] : added_by_kind) {
    double median = Percentile(values, 50);
    if (median <= worst) continue;
    worst = median;
    figures.bottleneck = std::string(FaultKindName(kind)) + " (+" + Seconds(median) +
                         " median over " + std::to_string(values.size()) + " builds)";
  }
  return figures;
}

}  // namespace manifold::bench
