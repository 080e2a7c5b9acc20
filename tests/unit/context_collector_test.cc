// The context collector deletes nothing when it cannot learn which contexts builds need.
#include "coordinator/context_collector.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "common/digest.h"
#include "coordinator/disk_context_store.h"
#include "tests/support/temp_dir.h"

namespace manifold {
namespace {

TEST(ContextCollectorTest, DeletesNothingWhileTheNeededContextsAreUnknown) {
  test::TempDir dir("manifold-collector");
  Result<std::unique_ptr<DiskContextStore>> store = DiskContextStore::Create(dir.path());
  ASSERT_TRUE(store.ok());
  Result<std::unique_ptr<ContextWriter>> writer = (*store)->Put();
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append("a context").ok());
  std::string digest = Sha256Digest("a context");
  ASSERT_TRUE((*writer)->Commit(digest).ok());
  timespec long_ago[2] = {{1, 0}, {1, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, (*store)->FileFor(digest).c_str(), long_ago, 0), 0);

  bool database_up = false;
  auto needed = [&]() -> Result<std::set<std::string>> {
    if (!database_up) return Status::Unavailable("the database is down");
    return std::set<std::string>{};
  };
  Metrics metrics;
  ContextRetention retention;
  retention.max_age = std::chrono::seconds(60);
  ContextCollector collector(**store, needed, metrics, retention);
  EXPECT_EQ(collector.interval(), std::chrono::seconds(15));

  Status ran = collector.RunOnce();
  EXPECT_EQ(ran.code(), Status::Code::kUnavailable);
  EXPECT_NE(ran.message().find("the database is down"), std::string::npos);
  EXPECT_TRUE((*store)->Has(digest));

  ASSERT_EQ(utimensat(AT_FDCWD, (*store)->FileFor(digest).c_str(), long_ago, 0), 0);
  database_up = true;
  EXPECT_TRUE(collector.RunOnce().ok());
  EXPECT_FALSE((*store)->Has(digest));
}

}  // namespace
}  // namespace manifold
