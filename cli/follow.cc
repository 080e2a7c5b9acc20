#include "cli/follow.h"

#include <algorithm>
#include <map>
#include <optional>
#include <thread>

namespace manifold {
namespace {

std::string Describe(const JobInfo& job) {
  if (job.state == "pending") {
    // A waiting job's placement is why it waits, when the coordinator knows more than
    // that every slot is busy: no connected agent serves its platform, say.
    const std::string why = job.placement.empty() ? "" : ": " + job.placement;
    if (job.attempt > 1) {
      std::string text = "job requeued for attempt " + std::to_string(job.attempt);
      if (!job.error.empty()) text += " after: " + job.error;
      return text + (why.empty() ? "" : "; waiting" + why);
    }
    return "waiting for an agent" + why;
  }
  std::string agent = job.agent.empty() ? "an agent" : "agent " + job.agent;
  if (job.emulated) agent += " (emulated)";
  std::string attempt = job.attempt > 1 ? " (attempt " + std::to_string(job.attempt) + ")" : "";
  if (job.state == "assigned") return "job assigned to " + agent + attempt;
  if (job.state == "building") return "building on " + agent + attempt;
  if (job.state == "pushing") return "pushing the image to the registry";
  if (job.state == "succeeded") return "pushed " + job.manifest_digest;
  if (job.state == "failed")
    return "failed: " + (job.error.empty() ? "no reason given" : job.error);
  if (job.state == "canceled") return "canceled";
  return "state " + job.state;
}

bool IsFinalJobState(const std::string& state) {
  return state == "succeeded" || state == "failed" || state == "canceled";
}

// Treats the wait for an answer as transient only for errors a retry may fix.
class Retrier {
 public:
  Retrier(const FollowOptions& options, std::ostream* err) : options_(options), err_(err) {}

  // True when `status` should be retried after a pause; warns once per outage. Only a
  // coordinator that answered before is waited for: a wrong --server fails at once.
  bool ShouldRetry(const Status& status) {
    if (!status.retryable() || !answered_) return false;
    auto now = std::chrono::steady_clock::now();
    if (!outage_start_) {
      outage_start_ = now;
      if (err_ != nullptr) {
        *err_
            << "manifold: " << status.message() << " (retrying for up to "
            << std::chrono::duration_cast<std::chrono::seconds>(options_.unavailable_grace).count()
            << " s)\n";
        err_->flush();
      }
    }
    if (now - *outage_start_ > options_.unavailable_grace) return false;
    std::this_thread::sleep_for(options_.interval);
    return true;
  }

  // The coordinator answered once: later outages are worth waiting for.
  void Answered() { answered_ = true; }
  // A whole poll went through: the outage, if any, is over.
  void Succeeded() {
    if (outage_start_ && err_ != nullptr) {
      *err_ << "manifold: the coordinator answers again\n";
      err_->flush();
    }
    outage_start_.reset();
  }

 private:
  const FollowOptions& options_;
  std::ostream* err_;
  bool answered_ = false;
  std::optional<std::chrono::steady_clock::time_point> outage_start_;
};

}  // namespace

std::vector<ProgressEvent> JobChanges(const BuildInfo* before, const BuildInfo& after) {
  std::vector<ProgressEvent> events;
  std::map<int64_t, const JobInfo*> previous;
  if (before != nullptr) {
    for (const JobInfo& job : before->jobs) previous[job.id] = &job;
  }
  for (const JobInfo& job : after.jobs) {
    auto it = previous.find(job.id);
    if (it != previous.end()) {
      const JobInfo& old = *it->second;
      if (old.state == job.state && old.attempt == job.attempt && old.agent == job.agent &&
          old.placement == job.placement) {
        continue;
      }
    }
    events.push_back({job.platform, Describe(job), IsFinalJobState(job.state)});
  }
  bool was_merging = before != nullptr && before->state == "merging";
  if (after.state == "merging" && !was_merging) {
    // Final so that it follows the jobs' last lines and their "pushed" lines.
    events.push_back({"", "every platform is pushed; pushing the image index", true});
  }
  return events;
}

Result<BuildInfo> FollowBuild(const ApiClient& api, int64_t id, const FollowOptions& options,
                              LogPrinter* printer, std::ostream* err) {
  // Pages fetched per poll before the build's state is looked at again; a page holds a few
  // hundred chunks, so this drains any realistic backlog in one poll.
  constexpr int kMaxPagesPerPoll = 100;
  ProgressView* view = options.view;
  bool logs = options.print_logs && (printer != nullptr || view != nullptr);
  bool changes = options.print_job_changes && printer != nullptr;
  Retrier retrier(options, err);
  // Per platform, the log chunks that hold the agent's "manifold: failed: ..." line.
  constexpr std::string_view kFailedLine = "manifold: failed: ";
  std::map<std::string, std::string> failures_logged;
  std::optional<BuildInfo> last;
  int64_t after = 0;
  auto interrupted = [&] { return options.interrupted != nullptr && options.interrupted->load(); };
  while (true) {
    if (interrupted()) {
      if (printer != nullptr) printer->Flush();
      if (view != nullptr) view->Finish(std::chrono::steady_clock::now());
      return Status::Canceled("interrupted while following build " + std::to_string(id));
    }
    Result<BuildInfo> build = api.GetBuild(id);
    if (!build.ok()) {
      if (retrier.ShouldRetry(build.status())) continue;
      return build.status();
    }
    retrier.Answered();
    if (view != nullptr) view->Update(*build, std::chrono::steady_clock::now());
    std::vector<ProgressEvent> events;
    if (changes) events = JobChanges(last ? &*last : nullptr, *build);
    last = *build;
    for (const ProgressEvent& event : events) {
      if (!event.final) printer->Line(event.platform, event.text);
    }

    // The logs are read after the state, so they hold every line a job wrote before the
    // state says it finished; its final word is printed after them.
    bool caught_up = !logs;
    Status log_error;
    for (int pages = 0; logs && pages < kMaxPagesPerPoll; ++pages) {
      Result<LogPage> page = api.GetLogs(id, after);
      if (!page.ok()) {
        log_error = page.status();
        break;
      }
      bool printed = false;
      for (const LogChunk& chunk : page->chunks) {
        if (chunk.seq <= after) continue;  // printed already; a server may repeat chunks
        if (view != nullptr) {
          view->Write(chunk.platform, chunk.attempt, chunk.data);
        } else {
          printer->Write(chunk.platform, chunk.attempt, chunk.data);
        }
        after = chunk.seq;
        printed = true;
        if (chunk.data.find(kFailedLine) != std::string::npos) {
          failures_logged[chunk.platform] += chunk.data;
        }
      }
      // Never go back: a `next` behind what was printed would print chunks twice.
      after = std::max(after, page->next);
      // A coordinator that never says done is caught up once a page brings nothing new.
      if (page->done || !printed) {
        caught_up = true;
        break;
      }
    }
    for (const ProgressEvent& event : events) {
      if (!event.final) continue;
      // The agent's last log line says why a job failed; the summary says it again.
      const bool said =
          event.text.starts_with("failed: ") &&
          failures_logged[event.platform].find("manifold: " + event.text) != std::string::npos;
      printer->Line(event.platform, said ? "failed (the agent's error is above)" : event.text);
    }
    if (!log_error.ok()) {
      if (retrier.ShouldRetry(log_error)) continue;
      return log_error;
    }
    retrier.Succeeded();

    if (build->IsFinal() && caught_up) {
      if (printer != nullptr) printer->Flush();
      if (view != nullptr) view->Finish(std::chrono::steady_clock::now());
      return std::move(build).value();
    }
    if (view != nullptr) view->Draw(std::chrono::steady_clock::now());
    // Slept in slices, so Ctrl-C is noticed within a slice rather than an interval.
    for (auto slept = std::chrono::milliseconds(0); slept < options.interval && !interrupted();
         slept += std::chrono::milliseconds(50)) {
      std::this_thread::sleep_for(std::min(std::chrono::milliseconds(50), options.interval));
    }
  }
}

Status PrintAvailableLogs(const ApiClient& api, int64_t id, LogPrinter* printer) {
  int64_t after = 0;
  while (true) {
    Result<LogPage> page = api.GetLogs(id, after);
    if (!page.ok()) return page.status();
    if (page->pruned && page->chunks.empty() && after == 0) {
      return Status::FailedPrecondition(
          "the log of build " + std::to_string(id) +
          " was deleted: the coordinator keeps a build's log for its --retention after the "
          "build ends");
    }
    int64_t previous = after;
    for (const LogChunk& chunk : page->chunks) {
      if (chunk.seq <= after) continue;
      printer->Write(chunk.platform, chunk.attempt, chunk.data);
      after = chunk.seq;
    }
    after = std::max(after, page->next);
    if (page->chunks.empty() || page->done || after == previous) break;
  }
  printer->Flush();
  return Status::Ok();
}

}  // namespace manifold
