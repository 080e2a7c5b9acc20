// The leader lease on a real PostgreSQL: one holder at a time, taken over only once expired,
// and a deposed leader's fenced writes refused; a takeover waits for a fenced write under way.
#include "coordinator/leader_lease.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "coordinator/leadership.h"
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
  Result<std::optional<int64_t>> first =
      TryAcquireLease(*a, "coordinator-a", "http://a.test", 1500ms, &seen);
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ(seen.holder, "coordinator-a");
  Result<std::optional<int64_t>> refused =
      TryAcquireLease(*b, "coordinator-b", "http://b.test", 1500ms, &seen);
  ASSERT_TRUE(refused.ok());
  EXPECT_FALSE(refused->has_value()) << "another holder's lease is still running";
  EXPECT_EQ(seen.holder, "coordinator-a");
  EXPECT_EQ(seen.api_url, "http://a.test") << "where the other coordinators find the leader";
  EXPECT_EQ(seen.epoch, **first);
  EXPECT_GT(seen.remaining, 0ms);
  EXPECT_TRUE(RenewLease(*a, "coordinator-a", **first, 1500ms).value());

  // A stops renewing (paused, or gone); once the lease runs out, B takes it.
  std::this_thread::sleep_for(1700ms);
  Result<std::optional<int64_t>> taken =
      TryAcquireLease(*b, "coordinator-b", "http://b.test", 1500ms, &seen);
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
  Result<std::optional<int64_t>> after =
      TryAcquireLease(*a, "coordinator-a", "http://a.test", 1500ms, nullptr);
  ASSERT_TRUE(after.ok() && after->has_value());
  EXPECT_GT(**after, **taken);
}

TEST_F(LeaderLeaseTest, ATakeoverWaitsForAFencedWriteUnderWay) {
  auto a = Connect();
  auto b = Connect();
  Result<std::optional<int64_t>> first =
      TryAcquireLease(*a, "coordinator-a", "http://a.test", 300ms, nullptr);
  ASSERT_TRUE(first.ok() && first->has_value());
  pqxx::work write(*a);
  ASSERT_TRUE(FenceLease(write, **first).ok());  // the leader's write holds the row
  std::this_thread::sleep_for(500ms);            // its lease expires meanwhile
  std::future<Result<std::optional<int64_t>>> takeover = std::async(std::launch::async, [&] {
    return TryAcquireLease(*b, "coordinator-b", "http://b.test", 300ms, nullptr);
  });
  EXPECT_EQ(takeover.wait_for(500ms), std::future_status::timeout)
      << "the takeover did not wait for the write it would fence";
  write.commit();
  Result<std::optional<int64_t>> taken = takeover.get();
  ASSERT_TRUE(taken.ok() && taken->has_value());
  EXPECT_GT(**taken, **first);
}

// The epoch is the fence, not the expiry: a lease that ran out while nobody took it (the
// database was out of reach longer than the lease) is renewed by its holder, whose writes
// go on; only a takeover deposes it.
TEST_F(LeaderLeaseTest, AnExpiredLeaseNobodyTookIsRenewedByItsHolder) {
  auto a = Connect();
  Result<std::optional<int64_t>> first =
      TryAcquireLease(*a, "coordinator-a", "http://a.test", 300ms, nullptr);
  ASSERT_TRUE(first.ok() && first->has_value());
  std::this_thread::sleep_for(500ms);
  {
    pqxx::work tx(*a);
    EXPECT_TRUE(FenceLease(tx, **first).ok());
  }
  EXPECT_TRUE(RenewLease(*a, "coordinator-a", **first, 1500ms).value());
  EXPECT_FALSE(
      TryAcquireLease(*Connect(), "coordinator-b", "http://b.test", 1500ms, nullptr)->has_value())
      << "the renewed lease is running again";
}

// A leader whose database is out of reach past its lease pauses (leading() is false), keeps
// trying, and leads again with the same epoch once the database answers.
TEST_F(LeaderLeaseTest, ALeaderPausesWhileItCannotRenewAndLeadsAgainOnceItDoes) {
  std::atomic<bool> lost{false};
  Leadership a({.database_url = postgres_.url(),
                .holder = "coordinator-a",
                .lease = 900ms,
                .on_lost = [&](const std::string&) { lost = true; }});
  Result<int64_t> epoch = a.Await([] { return false; });
  ASSERT_TRUE(epoch.ok()) << epoch.status().message();
  postgres_.Stop();
  auto wait_for = [](auto condition) {
    for (auto end = std::chrono::steady_clock::now() + 30s; std::chrono::steady_clock::now() < end;
         std::this_thread::sleep_for(50ms)) {
      if (condition()) return true;
    }
    return false;
  };
  EXPECT_TRUE(wait_for([&] { return !a.leading(); })) << "still acting without a renewed lease";
  std::this_thread::sleep_for(1000ms);
  Status restarted = postgres_.Restart();
  ASSERT_TRUE(restarted.ok()) << restarted.message();
  EXPECT_TRUE(wait_for([&] { return a.leading(); })) << "did not lead again";
  EXPECT_EQ(a.epoch(), *epoch);
  EXPECT_FALSE(lost);
}

// Two coordinators' sides of the lease: the standby waits while the leader renews, takes
// over when the leader releases it, and a leader whose lease another took calls on_lost.
TEST_F(LeaderLeaseTest, AStandbyTakesOverAReleasedLeaseAndADeposedLeaderStepsDown) {
  auto stop = [] { return false; };
  Leadership a({.database_url = postgres_.url(), .holder = "coordinator-a", .lease = 900ms});
  Result<int64_t> a_epoch = a.Await(stop);
  ASSERT_TRUE(a_epoch.ok()) << a_epoch.status().message();
  EXPECT_TRUE(a.leading());

  std::promise<std::string> b_lost;
  Leadership b({.database_url = postgres_.url(),
                .holder = "coordinator-b",
                .lease = 900ms,
                .on_lost = [&](const std::string& why) { b_lost.set_value(why); }});
  std::future<Result<int64_t>> b_epoch =
      std::async(std::launch::async, [&] { return b.Await(stop); });
  // A renews (every 300 ms) through three lease lengths; B keeps waiting.
  EXPECT_EQ(b_epoch.wait_for(2700ms), std::future_status::timeout);
  EXPECT_TRUE(a.leading());
  a.Release();
  EXPECT_FALSE(a.leading());
  ASSERT_EQ(b_epoch.wait_for(30s), std::future_status::ready);
  Result<int64_t> taken = b_epoch.get();
  ASSERT_TRUE(taken.ok()) << taken.status().message();
  EXPECT_GT(*taken, *a_epoch);

  // B's lease runs out in the database as if B had paused past it, and C takes it: B
  // finds out at its next renewal and steps down.
  {
    auto sql = Connect();
    pqxx::work tx(*sql);
    tx.exec("UPDATE leader_lease SET expires_at = now() - interval '1 second'");
    tx.commit();
  }
  Leadership c({.database_url = postgres_.url(), .holder = "coordinator-c", .lease = 900ms});
  Result<int64_t> c_epoch = c.Await(stop);
  ASSERT_TRUE(c_epoch.ok());
  EXPECT_GT(*c_epoch, *taken);
  std::future<std::string> why = b_lost.get_future();
  ASSERT_EQ(why.wait_for(30s), std::future_status::ready) << "B never stepped down";
  EXPECT_EQ(why.get(), "another coordinator took the leader lease over");
  EXPECT_FALSE(b.leading());
  EXPECT_TRUE(c.leading());
}

}  // namespace
}  // namespace manifold
