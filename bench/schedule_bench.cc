// schedule_bench: how long coordinator/scheduler.h's Schedule() takes to decide, by queue
// depth (100, 10,000 and 100,000 pending jobs of two platforms). Two cases, each the median
// of repeated calls on the same inputs:
//   one free slot   a fleet of 1,000 agents, all busy but one: the decision the coordinator
//                   makes each time a job ends (the common case under load);
//   all slots free  the same fleet idle: 1,000 assignments in one call (time per call and
//                   per assignment).
// Goal: flat (within 2x) from 100 to 100,000 pending jobs. Plain timer loop; prints figures.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "coordinator/scheduler.h"

namespace {

using manifold::PendingJob;
using manifold::Platform;
using manifold::SchedulerAgent;
using Clock = std::chrono::steady_clock;

const Platform kAmd64{"linux", "amd64", ""};
const Platform kArm64{"linux", "arm64", ""};

std::vector<PendingJob> Pending(int count) {
  std::vector<PendingJob> pending;
  for (int i = 0; i < count; ++i) {
    pending.push_back({static_cast<uint64_t>(i + 1), i % 2 == 0 ? kAmd64 : kArm64});
  }
  return pending;
}

std::vector<SchedulerAgent> Fleet(int agents, int free_agents) {
  std::vector<SchedulerAgent> fleet;
  for (int i = 0; i < agents; ++i) {
    char id[32];
    snprintf(id, sizeof(id), "agent-%05d", i);
    fleet.push_back({id, {{i % 2 == 0 ? kAmd64 : kArm64, false}}, i < free_agents ? 1u : 0u});
  }
  return fleet;
}

// Median microseconds of one Schedule call, over `repeats` calls (at least 1 s of them for
// the fast cases, at most 1,000 calls).
double MedianMicros(const std::vector<PendingJob>& pending,
                    const std::vector<SchedulerAgent>& agents, size_t* assignments) {
  std::vector<double> times;
  auto start = Clock::now();
  while (times.size() < 1000 &&
         (times.size() < 5 || Clock::now() - start < std::chrono::seconds(1))) {
    auto t0 = Clock::now();
    std::vector<manifold::Assignment> result = manifold::Schedule(pending, agents);
    auto t1 = Clock::now();
    *assignments = result.size();
    times.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int agents = argc > 1 ? std::atoi(argv[1]) : 1000;
  printf("Schedule() with %d agents (half linux/amd64, half linux/arm64), median per call\n",
         agents);
  printf("%10s %22s %22s %18s\n", "pending", "one free slot (us)", "all free (us/call)",
         "all free (us/job)");
  double first_one = 0, first_all = 0, worst_one = 1, worst_all = 1;
  for (int depth : {100, 10000, 100000}) {
    std::vector<PendingJob> pending = Pending(depth);
    size_t assigned_one = 0, assigned_all = 0;
    // The free agent serves the platform of the oldest job, as when that job's agent frees.
    double one = MedianMicros(pending, Fleet(agents, 1), &assigned_one);
    double all = MedianMicros(pending, Fleet(agents, agents), &assigned_all);
    printf("%10d %22.2f %22.1f %18.3f\n", depth, one, all,
           assigned_all > 0 ? all / static_cast<double>(assigned_all) : 0.0);
    if (assigned_one != 1)
      fprintf(stderr, "schedule_bench: expected 1 assignment, got %zu\n", assigned_one);
    // Per assignment: with 100 pending only 100 of the 1,000 free slots can be filled.
    double per_job = assigned_all > 0 ? all / static_cast<double>(assigned_all) : 0.0;
    if (depth == 100) {
      first_one = one;
      first_all = per_job;
    } else {
      worst_one = std::max(worst_one, one / first_one);
      worst_all = std::max(worst_all, per_job / first_all);
    }
  }
  printf(
      "growth 100 -> 100,000 pending: one free slot %.1fx, all free per job %.1fx (goal: within "
      "2x)\n",
      worst_one, worst_all);
  return 0;
}
