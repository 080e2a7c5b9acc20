// The leader lease on a real PostgreSQL: one holder at a time, taken over only once expired,
// and a deposed leader's fenced writes refused; a takeover waits for a fenced write under way.
#include "coordinator/leader_lease.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "coordinator/store.h"
#include "tests/support/postgres_server.h"

namespace manifold {
namespace {

using namespace std::chrono_literals;

class LeaderLeaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status started = postgres_.Start();
    ASSERT_TRUE(started.ok()) << started.message();
    Result<std::unique_ptr<Store>> store = Store::Open(postgres_.url());
    ASSERT_TRUE(store.ok()) << store.status().message();
    ASSERT_TRUE((*store)->Migrate().ok());
  }
  std::unique_ptr<pqxx::connection> Connect() {
    return std::make_unique<pqxx::connection>(postgres_.url());
  }

  test::PostgresServer postgres_;
};

TEST_F(LeaderLeaseTest, OneHolderAtATimeAndANewEpochOnlyOnceTheLeaseExpired) {
  auto a = Connect();
  auto b = Connect();
  LeaseHolder seen;
  Result<std::optional<int64_t>> first = TryAcquireLease(*a, "coordinator-a", 1500ms, &seen);
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ(seen.holder, "coordinator-a");
  Result<std::optional<int64_t>> refused = TryAcquireLease(*b, "coordinator-b", 1500ms, &seen);
  ASSERT_TRUE(refused.ok());
  EXPECT_FALSE(refused->has_value()) << "another holder's lease is still running";
  EXPECT_EQ(seen.holder, "coordinator-a");
  EXPECT_EQ(seen.epoch, **first);
  EXPECT_GT(seen.remaining, 0ms);
  EXPECT_TRUE(RenewLease(*a, "coordinator-a", **first, 1500ms).value());

  // A stops renewing (paused, or gone); once the lease runs out, B takes it.
  std::this_thread::sleep_for(1700ms);
  Result<std::optional<int64_t>> taken = TryAcquireLease(*b, "coordinator-b", 1500ms, &seen);
  ASSERT_TRUE(taken.ok() && taken->has_value());
  EXPECT_GT(**taken, **first);
  EXPECT_FALSE(RenewLease(*a, "coordinator-a", **first, 1500ms).value())
      << "a deposed leader cannot renew";

  // A's writes are fenced off; B's go through.
  {
    pqxx::work tx(*a);
    Status fenced = FenceLease(tx, **first);
    EXPECT_EQ(fenced.code(), Status::Code::kFailedPrecondition) << fenced.message();
  }
  {
    pqxx::work tx(*b);
    EXPECT_TRUE(FenceLease(tx, **taken).ok());
  }
  // A clean shutdown releases it at once.
  ASSERT_TRUE(ReleaseLease(*b, "coordinator-b", **taken).ok());
  Result<std::optional<int64_t>> after = TryAcquireLease(*a, "coordinator-a", 1500ms, nullptr);
  ASSERT_TRUE(after.ok() && after->has_value());
  EXPECT_GT(**after, **taken);
}

TEST_F(LeaderLeaseTest, ATakeoverWaitsForAFencedWriteUnderWay) {
  auto a = Connect();
  auto b = Connect();
  Result<std::optional<int64_t>> first = TryAcquireLease(*a, "coordinator-a", 300ms, nullptr);
  ASSERT_TRUE(first.ok() && first->has_value());
  pqxx::work write(*a);
  ASSERT_TRUE(FenceLease(write, **first).ok());  // the leader's write holds the row
  std::this_thread::sleep_for(500ms);            // its lease expires meanwhile
  std::future<Result<std::optional<int64_t>>> takeover = std::async(
      std::launch::async, [&] { return TryAcquireLease(*b, "coordinator-b", 300ms, nullptr); });
  EXPECT_EQ(takeover.wait_for(500ms), std::future_status::timeout)
      << "the takeover did not wait for the write it would fence";
  write.commit();
  Result<std::optional<int64_t>> taken = takeover.get();
  ASSERT_TRUE(taken.ok() && taken->has_value());
  EXPECT_GT(**taken, **first);
}

}  // namespace
}  // namespace manifold
