// JobCgroups: a cgroup per build job that holds the job's memory, CPU and process limits,
// so that every RUN step of the job (buildah puts each in a cgroup below it, given as
// --cgroup-parent) counts against the same limits, and the counters that say which limit
// a failed job ran into outlive the steps (runc removes each step's own cgroup when the
// step ends, its counters with it).
//
// The limits sit on the job's cgroup, not on buildah's --memory and --cpu-quota, because
// those land on the step's cgroup, whose counters are gone when the step is, and they
// bound each step alone rather than the job.
//
// cgroup v1 (controllers under /sys/fs/cgroup/NAME; CI and containers): the jobs' root is
// /manifold-agent-HASH in each hierarchy. cgroup v2 (Debian 12 with systemd): the agent
// needs a delegated cgroup (systemd Delegate=yes); it moves itself into a leaf
// agent-HASH of its own cgroup and makes jobs under jobs-HASH next to it, and buildah must
// use the cgroupfs manager there. HASH comes from the agent's work dir, so agents sharing a
// host never touch each other's jobs. Opening the root removes what a killed agent left
// there (killing processes still in it); an agent that exits removes it.
//
// Thread-safety: JobCgroups::Create may run from several job threads at once; a JobCgroup
// belongs to one job thread.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/job_policy.h"
#include "common/job_limits.h"
#include "common/status.h"

namespace manifold {

class JobCgroup {
 public:
  JobCgroup(const JobCgroup&) = delete;
  JobCgroup& operator=(const JobCgroup&) = delete;
  ~JobCgroup();  // removes the job's cgroup in every hierarchy, killing what is left in it

  // The cgroup buildah's --cgroup-parent takes for the job's steps: a path below the job's
  // cgroup, relative to the cgroup file system's root.
  const std::string& steps_parent() const { return steps_parent_; }
  // The limit the job ran into, when its counters say it did; memory and processes only
  // (a CPU limit slows a job, it does not fail it).
  std::optional<JobLimit> LimitReached() const;

 private:
  friend class JobCgroups;
  JobCgroup(bool v2, std::vector<std::string> dirs, std::string steps_parent, JobLimits limits);
  // The file `name` of the job's cgroup in the hierarchy that has it ("" when none does).
  std::string ReadFile(const std::string& name) const;

  bool v2_;
  std::vector<std::string> dirs_;  // the job's cgroup dir in each hierarchy (one on v2)
  std::string steps_parent_;
  JobLimits limits_;
};

class JobCgroups {
 public:
  // The jobs' root for the agent whose work dir is work_dir, emptied of leftovers.
  // FailedPrecondition saying what to do when there is no cgroup file system the agent may
  // write (not root; v2 without Delegate=yes).
  static Result<std::unique_ptr<JobCgroups>> Open(const std::string& work_dir);

  // A cgroup for the job `name` ("job-12-1") with the memory, CPU and process limits set
  // (zero fields stay unlimited).
  Result<std::unique_ptr<JobCgroup>> Create(const std::string& name, const JobLimits& limits);

  // Removes the jobs' root; every JobCgroup made here must be gone first.
  ~JobCgroups();
  JobCgroups(const JobCgroups&) = delete;
  JobCgroups& operator=(const JobCgroups&) = delete;

  bool v2() const { return v2_; }

 private:
  JobCgroups(bool v2, std::vector<std::string> roots, std::string relative_root);

  bool v2_;
  // The jobs' root dir in each hierarchy: v1 every mounted hierarchy (runc makes the steps'
  // cgroups in all of them), v2 the one.
  std::vector<std::string> roots_;
  std::string relative_root_;  // the same root relative to the file system's root
};

}  // namespace manifold
