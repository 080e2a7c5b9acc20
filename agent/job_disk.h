// JobDisk: a job's work dir (its context, unpacked context, Dockerfile and the OCI layout of
// the built image) on a file system of its own, the size of the job's disk limit, so that
// no job can fill the agent's disk through it, however fast it writes: a sparse image file
// next to the dir, formatted ext4 and loop-mounted on it (root only; mkfs.ext4 from
// e2fsprogs, mount from util-linux). The file system is unmounted and its image deleted
// when the JobDisk goes; SweepJobDisks removes what a killed agent left.
//
// Thread-safety: each JobDisk belongs to one job thread; SweepJobDisks runs before any job.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"

namespace manifold {

class JobDisk {
 public:
  // Makes `dir` (which must not be mounted on yet) a mounted file system of `bytes`.
  static Result<std::unique_ptr<JobDisk>> Mount(const std::string& dir, uint64_t bytes);
  JobDisk(const JobDisk&) = delete;
  JobDisk& operator=(const JobDisk&) = delete;
  ~JobDisk();  // unmounts and deletes the dir and its image

  // True when the file system has (almost) no room left: the job ran into its disk limit.
  bool Full() const;

 private:
  JobDisk(std::string dir, std::string image) : dir_(std::move(dir)), image_(std::move(image)) {}
  std::string dir_;
  std::string image_;
};

// Unmounts every job file system under jobs_dir and removes everything there: what a killed
// agent left. Runs at agent start, before any job.
void SweepJobDisks(const std::string& jobs_dir);

}  // namespace manifold
