// AgentLoop's view of waiting, held and merging work, read from the store: at start
// (Resume), again after a write whose outcome was unknown (the answer to its COMMIT was
// lost and the database could not be asked) once the database answers, and for the work
// other coordinators' APIs took (all of it, or one build).
#include <spdlog/spdlog.h>

#include <set>

#include "common/log.h"
#include "coordinator/agent_loop.h"

namespace manifold {

Status AgentLoop::ReadView(LoopClock::time_point now, bool at_start) {
  Result<std::vector<QueuedJob>> pending = store_.PendingJobs();
  if (!pending.ok()) return pending.status();
  Result<std::vector<JobRecord>> active = store_.ActiveJobs();
  if (!active.ok()) return active.status();
  Result<std::vector<BuildRecord>> merging = store_.BuildsToMerge();
  if (!merging.ok()) return merging.status();
  Result<std::vector<CachePush>> pushes = store_.CachePushes();
  if (!pushes.ok()) return pushes.status();
  std::set<uint64_t> waiting, held, builds_to_run;
  for (QueuedJob& job : *pending) {
    waiting.insert(job.job_id);
    builds_to_run.insert(job.build_id);
    if (pending_.count(job.job_id)) continue;
    if (!at_start && !job.spec->secret_ids.empty() && !secrets_.count(job.build_id)) continue;
    ReleaseJob(job.job_id);  // its requeue was recorded, unheard
    const uint64_t job_id = job.job_id;
    AddPending(std::move(job), now);
    // What an earlier run recorded of why it waits: the next check says it again.
    if (auto added = pending_.find(job_id); at_start && added != pending_.end()) {
      added->second.reason.reset();
    }
  }
  std::erase_if(pending_, [&](const auto& entry) { return !waiting.count(entry.first); });
  // Agents reconnect with back-off (at most 2 s apart) and may have queued work to send
  // first: they get the liveness window plus that much before their jobs are retried.
  LoopClock::time_point hello_deadline =
      now + options_.heartbeat_interval * options_.missed_heartbeats + std::chrono::seconds(10);
  auto system_now = std::chrono::system_clock::now().time_since_epoch();
  for (const CachePush& push : *pushes) {
    // Stored as wall time; the loop keeps time on a steady clock.
    auto age = std::chrono::duration_cast<std::chrono::milliseconds>(system_now) -
               std::chrono::milliseconds(push.pushed_unix_ms);
    LoopClock::time_point at = now - age;
    auto [it, added] = cache_pushes_.try_emplace({push.repository, push.platform}, at);
    if (!added && it->second >= at) continue;
    it->second = at;
    cache_refs_[{push.repository, push.platform}] = push.cache_ref;
  }
  for (const JobRecord& job : *active) {
    held.insert(job.id);
    builds_to_run.insert(job.build_id);
    auto running = running_.find(job.id);
    if (running != running_.end() && running->second.job == JobRef{job.id, job.attempt} &&
        running->second.agent_id == job.agent_id) {
      continue;
    }
    // At start, or an assignment recorded unheard: an agent that does not hold the job
    // says so in its hello or heartbeats, and the job is retried (Reconcile).
    ReleaseJob(job.id);
    // The job's deadline is stored as wall time; the loop keeps time on a steady clock.
    auto left = std::chrono::milliseconds(job.deadline_unix_ms) -
                std::chrono::duration_cast<std::chrono::milliseconds>(system_now);
    running_[job.id] = {{job.id, job.attempt}, job.agent_id, job.platform, now + left, 0, now};
    if (AgentSession* session = sessions_.Find(job.agent_id)) {
      session->jobs[job.id] = 0;  // no assign for it in this session: any heartbeat tells
      sessions_.Publish(job.agent_id);
    } else {
      sessions_.Await(job.agent_id, hello_deadline);
    }
  }
  std::vector<uint64_t> ended;  // ended or requeued unheard, or canceled by another API
  for (const auto& [job_id, running] : running_) {
    if (!held.count(job_id)) ended.push_back(job_id);
  }
  for (uint64_t job_id : ended) {
    // The store holds this attempt no more, so its agent should not work on: it would be
    // told so by its next report anyway.
    const RunningJob& running = running_.at(job_id);
    SendToAgent(running.agent_id, CancelMsg{running.job});
    ReleaseJob(job_id);
  }
  // A retry of a lost attempt the store no longer holds would release the job's next one.
  std::erase_if(unrecorded_losses_, [&](const auto& entry) {
    auto running = running_.find(entry.first);
    return running == running_.end() || !(running->second.job == entry.second.job);
  });
  std::erase_if(secrets_, [&](const auto& entry) { return !builds_to_run.count(entry.first); });
  spdlog::log(at_start ? spdlog::level::info : spdlog::level::debug,
              "{} pending, {} running jobs, {} builds to merge", pending_.size(), running_.size(),
              merging->size());
  for (BuildRecord& build : *merging) request_merge_(std::move(build));
  return Status::Ok();
}

void AgentLoop::ReadWorkBack(LoopClock::time_point now) {
  if (Status read = ReadView(now, /*at_start=*/false); !read.ok()) {
    // The listener reads again once it reconnects to the database.
    spdlog::warn("cannot read the work other coordinators took: {}", read.message());
  }
}

void AgentLoop::TakeBuilds(const std::vector<uint64_t>& build_ids, LoopClock::time_point now) {
  Result<std::vector<QueuedJob>> jobs = store_.PendingJobsOf(build_ids);
  if (!jobs.ok()) {
    // The listener reads all the work back once it reconnects to the database.
    spdlog::warn("cannot read {} build(s) submitted through another coordinator: {}",
                 build_ids.size(), jobs.status().message());
    return;
  }
  Enqueue(std::move(*jobs), nullptr, now);
}

void AgentLoop::TakeCancel(uint64_t build_id) {
  Result<BuildRecord> build = store_.GetBuild(build_id);
  if (!build.ok()) {
    spdlog::warn("{}cannot read build {}, canceled through another coordinator: {}",
                 LogIds{.build = build_id}, build_id, build.status().message());
    return;
  }
  BuildCanceled(build->jobs);  // drops the waiting ones, stops the held ones
}

void AgentLoop::CatchUpWithStore(LoopClock::time_point now) {
  const uint64_t unknown = store_.unknown_outcomes();
  if (unknown == unknown_outcomes_seen_ || reports_.store_away(now)) return;
  if (Status read = ReadView(now, /*at_start=*/false); !read.ok()) {
    spdlog::warn(
        "a write's outcome is unknown; the loop reads its view back from the database "
        "once it answers: {}",
        read.message());
    return;
  }
  spdlog::info("read the view back from the database after a write whose outcome was unknown");
  unknown_outcomes_seen_ = unknown;
}

}  // namespace manifold
