// Which addresses the coordinator treats as reachable from this host only.
#include "coordinator/listen_address.h"

#include <gtest/gtest.h>

namespace manifold {
namespace {

TEST(ListenAddress, OnlyLoopbackHostsAndLocalEndpointsCount) {
  for (const char* host : {"127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"}) {
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
  }
  for (const char* host : {"0.0.0.0", "10.0.0.1", "*", "", "128.0.0.1", "coordinator"}) {
    EXPECT_FALSE(IsLoopbackHost(host)) << host;
  }
  EXPECT_TRUE(IsLoopbackEndpoint("tcp://127.0.0.1:7081"));
  EXPECT_TRUE(IsLoopbackEndpoint("ipc:///run/manifold.sock"));
  EXPECT_FALSE(IsLoopbackEndpoint("tcp://*:7081"));
  EXPECT_FALSE(IsLoopbackEndpoint("tcp://0.0.0.0:7081"));
  EXPECT_FALSE(IsLoopbackEndpoint("tcp://eth0:7081"));
}

}  // namespace
}  // namespace manifold
