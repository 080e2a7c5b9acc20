// LoadGenerator: submits builds through the coordinator's HTTP API from several threads,
// keeping at most `max_outstanding_jobs` jobs submitted but not yet recorded (a closed
// loop, so the queue stays bounded and throughput is what the farm sustains). It keeps
// each job's submit time so that the simulated fleet's acknowledgements give the
// submit-to-recorded latency. Start and Stop from one thread; the rest is thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_farm.h"
#include "bench/sim_fleet.h"

namespace manifold::bench {

struct LoadOptions {
  std::vector<Platform> platforms;  // of each build
  int submitters = 4;
  uint64_t max_outstanding_jobs = 1000;
  std::string tag_prefix = "load";
  uint64_t max_builds = 0;  // 0: until Stop
};

class LoadGenerator {
 public:
  LoadGenerator(const BenchFarm& farm, const SimFleet& fleet, LoadOptions options);
  ~LoadGenerator();  // Stop()

  void Start();
  // Stops submitting (builds already submitted keep running) and joins the threads.
  void Stop();

  uint64_t builds_submitted() const { return builds_.load(); }
  uint64_t errors() const { return errors_.load(); }
  std::string first_error() const;
  // Submit time of every job submitted so far, and each build's tag.
  std::map<uint64_t, Clock::time_point> JobSubmitTimes() const;
  std::map<uint64_t, std::string> BuildTags() const;

 private:
  void Submit();

  const BenchFarm& farm_;
  const SimFleet& fleet_;
  const LoadOptions options_;
  uint64_t acked_at_start_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> reserved_jobs_{0}, builds_{0}, errors_{0}, sequence_{0};
  std::vector<std::thread> threads_;
  mutable std::mutex mutex_;
  std::map<uint64_t, Clock::time_point> submitted_;
  std::map<uint64_t, std::string> tags_;
  std::string first_error_;
};

// The q-quantile (0..1) of `values`, nearest rank; 0 when empty.
double Percentile(std::vector<double> values, double q);

}  // namespace manifold::bench
