#include "coordinator/waiting_reasons.h"

#include <gtest/gtest.h>

namespace manifold {
namespace {

using std::chrono::seconds;

const LoopClock::time_point kStart{std::chrono::hours(1)};
const QueueRules kRules{std::chrono::minutes(15), seconds(60), kStart};

Platform Of(const char* text) { return ParsePlatform(text).value(); }

WaitingJob Waiting(uint64_t id, const char* platform,
                   EmulationPolicy emulation = EmulationPolicy::kFallback) {
  auto spec = std::make_shared<BuildSpec>();
  spec->emulation = emulation;
  return {QueuedJob{id, 1, Of(platform), spec}, kStart, ""};
}

// What the connected, undrained agents serve: {platform, emulated} offers.
PlatformSightings Serving(std::vector<PlatformOffer> offers) {
  PlatformSightings sightings;
  sightings.Note(offers, kStart);
  return sightings;
}

TEST(WaitingReasonTest, APlatformNoAgentServesNamesWhatTheAgentsServeAndTheQueueTimeout) {
  PlatformSightings sightings =
      Serving({{Of("linux/arm64"), false}, {Of("linux/amd64"), false}, {Of("linux/s390x"), true}});
  EXPECT_EQ(WaitingReason(Waiting(1, "linux/arm/v7"), sightings, kRules),
            "no connected agent serves linux/arm/v7 (agents serve linux/amd64, linux/arm64, "
            "linux/s390x (emulated)); the job fails if none connects within 900 s "
            "(--queue-timeout)");
  EXPECT_EQ(WaitingReason(Waiting(1, "linux/arm/v7"), PlatformSightings{}, kRules),
            "no connected agent serves linux/arm/v7 (no agent is connected); the job fails if "
            "none connects within 900 s (--queue-timeout)");
}

TEST(WaitingReasonTest, AServedPlatformNeedsNoReason) {
  PlatformSightings sightings = Serving({{Of("linux/amd64"), false}, {Of("linux/arm64"), true}});
  for (EmulationPolicy policy :
       {EmulationPolicy::kNever, EmulationPolicy::kFallback, EmulationPolicy::kAllow}) {
    EXPECT_EQ(WaitingReason(Waiting(1, "linux/amd64", policy), sightings, kRules), "");
  }
  EXPECT_EQ(WaitingReason(Waiting(2, "linux/arm64", EmulationPolicy::kAllow), sightings, kRules),
            "");
}

TEST(WaitingReasonTest, OnlyEmulatingAgentsNameTheBuildsEmulationPolicy) {
  PlatformSightings sightings = Serving({{Of("linux/arm64"), true}});
  EXPECT_EQ(WaitingReason(Waiting(1, "linux/arm64", EmulationPolicy::kNever), sightings, kRules),
            "no connected agent serves linux/arm64 natively, and the build's --emulation never "
            "keeps it from the agents that emulate it; the job fails if no native one connects "
            "within 900 s (--queue-timeout): start one, or build with --emulation fallback");
  WaitingJob fallback = Waiting(2, "linux/arm64", EmulationPolicy::kFallback);
  EXPECT_EQ(WaitingReason(fallback, sightings, kRules),
            "no connected agent serves linux/arm64 natively; an agent that emulates it may take "
            "the job once it has waited 60 s (--emulation-fallback-wait)");
  fallback.native_wait_over = true;  // then it waits only for the emulating agent's slot
  EXPECT_EQ(WaitingReason(fallback, sightings, kRules), "");
}

TEST(WaitingReasonTest, OnlyReasonsThatDifferFromTheRecordedOnesChange) {
  WaitingJobs pending;
  pending[1] = Waiting(1, "linux/amd64");
  pending[2] = Waiting(2, "linux/arm/v7");
  pending[3] = Waiting(3, "linux/arm/v7");
  pending[4] = Waiting(4, "linux/amd64");
  PlatformSightings sightings = Serving({{Of("linux/amd64"), false}});
  const std::string unserved = WaitingReason(pending[2], sightings, kRules);
  pending[3].reason = unserved;      // recorded already
  pending[4].reason = std::nullopt;  // read at start: what the store holds is not known
  std::map<uint64_t, std::string> changed = ChangedWaitingReasons(pending, sightings, kRules);
  EXPECT_EQ(changed, (std::map<uint64_t, std::string>{{2, unserved}, {4, ""}}));

  // Once recorded, nothing changes until the agents do.
  for (auto& [job_id, reason] : changed) pending[job_id].reason = reason;
  EXPECT_TRUE(ChangedWaitingReasons(pending, sightings, kRules).empty());
  sightings = Serving({{Of("linux/amd64"), false}, {Of("linux/arm/v7"), false}});
  EXPECT_EQ(ChangedWaitingReasons(pending, sightings, kRules),
            (std::map<uint64_t, std::string>{{2, ""}, {3, ""}}));
}

}  // namespace
}  // namespace manifold
