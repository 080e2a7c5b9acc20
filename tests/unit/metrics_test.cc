#include "coordinator/metrics.h"

#include <gtest/gtest.h>

namespace manifold {
namespace {

TEST(MetricsTest, DesiredAgentsFollowsWorkSlotsAndUtilisation) {
  PlatformLoad idle;
  EXPECT_EQ(Metrics::DesiredAgents(idle, 0.8), 0);

  PlatformLoad queued;  // no agent yet: one slot per agent is assumed
  queued.pending = 3;
  EXPECT_EQ(Metrics::DesiredAgents(queued, 1.0), 3);
  EXPECT_EQ(Metrics::DesiredAgents(queued, 0.8), 4);  // ceil(3 / 0.8)

  PlatformLoad busy;  // two 4-slot agents, 8 running and 4 waiting
  busy.agents_native = 2;
  busy.slots_total = 8;
  busy.running = 8;
  busy.pending = 4;
  EXPECT_EQ(Metrics::DesiredAgents(busy, 1.0), 3);
  EXPECT_EQ(Metrics::DesiredAgents(busy, 0.75), 4);
}

}  // namespace
}  // namespace manifold
