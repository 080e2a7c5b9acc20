// The disk context store's rules on real files: writes are whole or absent, damaged files
// count as missing, crashed uploads are swept, and collection keeps what builds need.
#include "coordinator/disk_context_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <vector>

#include "common/digest.h"
#include "tests/support/temp_dir.h"

namespace manifold {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

class DiskContextStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<DiskContextStore>> opened = DiskContextStore::Create(dir_.path());
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    store_ = std::move(*opened);
  }

  // Stores `body` in pieces of 7 bytes; returns its digest.
  std::string Store(const std::string& body) {
    Result<std::unique_ptr<ContextWriter>> writer = store_->Put();
    EXPECT_TRUE(writer.ok());
    for (size_t at = 0; at < body.size(); at += 7) {
      EXPECT_TRUE((*writer)->Append(std::string_view(body).substr(at, 7)).ok());
    }
    std::string digest = Sha256Digest(body);
    Status committed = (*writer)->Commit(digest);
    EXPECT_TRUE(committed.ok()) << committed.message();
    return digest;
  }

  std::string ReadAll(const std::string& digest) {
    Result<std::unique_ptr<ContextReader>> reader = store_->Open(digest);
    if (!reader.ok()) return "<" + reader.status().message() + ">";
    std::string out((*reader)->size(), '\0');
    for (size_t at = 0; at < out.size();) {
      Result<size_t> n =
          (*reader)->ReadAt(at, out.data() + at, std::min<size_t>(5, out.size() - at));
      if (!n.ok() || *n == 0) return "<short read>";
      at += *n;
    }
    return out;
  }

  // Sets the file's last use `age` in the past, as if it were unused since.
  void Age(const std::string& digest, seconds age) { AgeFile(store_->FileFor(digest), age); }
  static void AgeFile(const std::string& path, seconds age) {
    timespec times[2];
    clock_gettime(CLOCK_REALTIME, &times[0]);
    times[0].tv_sec -= age.count();
    times[1] = times[0];
    ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  }

  // Collects; an empty result (after a failure) if the store cannot.
  ContextCollection Collect(const ContextRetention& retention, std::set<std::string> needed) {
    Result<ContextCollection> collected = store_->Collect(retention, needed);
    EXPECT_TRUE(collected.ok()) << collected.status().message();
    return collected.ok() ? *collected : ContextCollection{};
  }

  // Which of `digests` the store still has.
  std::vector<bool> Kept(const std::vector<std::string>& digests) {
    std::vector<bool> kept;
    for (const std::string& digest : digests) kept.push_back(store_->Has(digest));
    return kept;
  }

  std::vector<std::string> Files() {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_.path() + "/contexts")) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  test::TempDir dir_{"manifold-contexts"};
  std::unique_ptr<DiskContextStore> store_;
};

TEST_F(DiskContextStoreTest, AContextWrittenInPiecesIsReadBackWhole) {
  std::string body(1000, 'x');
  body += "the end";
  std::string digest = Store(body);
  EXPECT_TRUE(store_->Has(digest));
  EXPECT_EQ(ReadAll(digest), body);
  EXPECT_FALSE(store_->Has(Sha256Digest("other")));
  EXPECT_EQ(store_->Open(Sha256Digest("other")).status().code(), Status::Code::kNotFound);
}

TEST_F(DiskContextStoreTest, AMismatchedOrAbandonedUploadLeavesNothing) {
  {
    Result<std::unique_ptr<ContextWriter>> writer = store_->Put();
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Append("some bytes").ok());
    Status committed = (*writer)->Commit(Sha256Digest("other bytes"));
    EXPECT_EQ(committed.code(), Status::Code::kInvalidArgument);
    EXPECT_NE(committed.message().find("upload it again"), std::string::npos);
  }
  {
    Result<std::unique_ptr<ContextWriter>> writer = store_->Put();
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Append("cut short").ok());
  }
  EXPECT_TRUE(Files().empty());
  EXPECT_FALSE(store_->Has(Sha256Digest("other bytes")));
}

TEST_F(DiskContextStoreTest, ATruncatedContextIsDeletedAndReportedMissing) {
  std::string digest = Store(std::string(4096, 'a'));
  ASSERT_TRUE(store_->Has(digest));
  // Cut under its name, as a power loss before the data reached the disk would.
  fs::resize_file(store_->FileFor(digest), 100);
  EXPECT_FALSE(store_->Has(digest));
  EXPECT_FALSE(fs::exists(store_->FileFor(digest)));
  EXPECT_EQ(Collect(ContextRetention{}, {}).deleted_corrupt, 1);
  // Uploaded again, it is whole.
  EXPECT_EQ(Store(std::string(4096, 'a')), digest);
  EXPECT_TRUE(store_->Has(digest));
}

TEST_F(DiskContextStoreTest, AStoreOpenedOverADamagedFileFindsItOnFirstUse) {
  std::string digest = Sha256Digest("the whole context");
  {
    std::ofstream out(store_->FileFor(digest), std::ios::binary);
    out << "the whole";  // what a crash left under the final name
  }
  Result<std::unique_ptr<DiskContextStore>> reopened = DiskContextStore::Create(dir_.path());
  ASSERT_TRUE(reopened.ok());
  EXPECT_FALSE((*reopened)->Has(digest));
  EXPECT_TRUE(Files().empty());
}

// Stale ones only: a fresh one may be another coordinator's upload under way in a shared
// state dir.
TEST_F(DiskContextStoreTest, TemporaryFilesOfACrashAreSweptAtStart) {
  std::string kept = Store("kept");
  for (const char* name : {".tmp.4242.0", "0123.tar.tmp.77.3", ".tmp.99.1"}) {
    std::ofstream(dir_.path() + "/contexts/" + name) << "partial";
  }
  AgeFile(dir_.path() + "/contexts/.tmp.4242.0", seconds(16 * 60));
  AgeFile(dir_.path() + "/contexts/0123.tar.tmp.77.3", seconds(3600));
  Result<std::unique_ptr<DiskContextStore>> reopened = DiskContextStore::Create(dir_.path());
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(Files(), (std::vector<std::string>{".tmp.99.1", DigestHex(kept) + ".tar"}));
  EXPECT_TRUE((*reopened)->Has(kept));
}

TEST_F(DiskContextStoreTest, AgeCollectionKeepsNeededAndRecentlyUsedContexts) {
  std::string old_unneeded = Store("old and unneeded");
  std::string old_needed = Store("old but a queued build needs it");
  std::string old_used = Store("old but used just now");
  std::string fresh = Store("fresh");
  for (const std::string& digest : {old_unneeded, old_needed, old_used}) Age(digest, seconds(3600));
  ASSERT_TRUE(store_->Has(old_used));  // a use makes it recent again

  ContextRetention retention;
  retention.max_age = seconds(600);
  retention.max_bytes = 0;
  ContextCollection collected = Collect(retention, {old_needed});
  EXPECT_EQ(collected.deleted_by_age, 1);
  EXPECT_EQ(collected.contexts_stored, 3u);
  EXPECT_EQ(Kept({old_unneeded, old_needed, old_used, fresh}),
            (std::vector<bool>{false, true, true, true}));
}

TEST_F(DiskContextStoreTest, SizeCollectionDeletesLeastRecentlyUsedFirstButNeverANeededOne) {
  std::string oldest_needed = Store(std::string(100, '1'));
  std::string older = Store(std::string(100, '2'));
  std::string old = Store(std::string(100, '3'));
  std::string in_grace = Store(std::string(100, '4'));
  Age(oldest_needed, seconds(400));
  Age(older, seconds(300));
  Age(old, seconds(200));
  Age(in_grace, seconds(10));

  ContextRetention retention;
  retention.max_age = seconds(0);
  retention.max_bytes = 150;  // room for one and a half
  retention.grace = seconds(60);
  ContextCollection collected = Collect(retention, {oldest_needed});
  // The needed one and the one in its grace stay, over the limit; the rest goes, oldest
  // first.
  EXPECT_EQ(collected.deleted_by_size, 2);
  EXPECT_EQ(collected.bytes_stored, 200u);
  EXPECT_EQ(Kept({oldest_needed, older, old, in_grace}),
            (std::vector<bool>{true, false, false, true}));

  retention.max_bytes = 250;  // now everything fits: nothing more goes
  collected = Collect(retention, {});
  EXPECT_EQ(collected.deleted_by_size, 0);
  EXPECT_EQ(collected.contexts_stored, 2u);
}

TEST_F(DiskContextStoreTest, AVerifiedFileIsNotHashedAgainUntilItChanges) {
  std::string digest = Store(std::string(64, 'v'));
  ASSERT_TRUE(store_->Has(digest));
  // Same size, same inode, mtime put back: only a cache of what was verified still says
  // yes. Changing the mtime makes the store look again.
  std::string path = store_->FileFor(digest);
  struct stat before;
  ASSERT_EQ(stat(path.c_str(), &before), 0);
  {
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(0);
    file << 'w';
  }
  timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  EXPECT_TRUE(store_->Has(digest));
  Age(digest, seconds(5));
  EXPECT_FALSE(store_->Has(digest));
}

// Every use touches the file (its last use, for collection). Concurrent uses of one context,
// as a matrix of CI jobs of the same commit makes them, must not take each other's touch for
// the file being replaced: each once lost that race twice and answered "no context".
TEST_F(DiskContextStoreTest, ConcurrentUsesOfOneContextAllFindIt) {
  const std::string digest = Store(std::string(4096, 'c'));
  std::atomic<int> missing{0};
  std::vector<std::thread> users;
  for (int t = 0; t < 8; ++t) {
    users.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        if (!store_->Open(digest).ok()) ++missing;
      }
    });
  }
  for (std::thread& user : users) user.join();
  EXPECT_EQ(missing.load(), 0);
}

}  // namespace
}  // namespace manifold
