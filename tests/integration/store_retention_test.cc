// The store's retention against a real PostgreSQL (one server for the suite, emptied
// before each test): finished builds older than the retention go with their jobs, events
// and logs, oldest first and a batch at a time; younger ones and unfinished builds of any
// age stay whole; agents gone as long go unless connected or named by a kept job; and the
// counts behind the builds gauge.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "common/digest.h"
#include "coordinator/store.h"
#include "tests/support/postgres_server.h"

namespace manifold {
namespace {

using std::chrono::hours;
using Counts = std::map<std::string, int>;

class StoreRetentionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    postgres_ = new test::PostgresServer();
    Status started = postgres_->Start();
    if (!started.ok()) {
      ADD_FAILURE() << started.message();
      return;
    }
    Result<std::unique_ptr<Store>> opened = Store::Open(postgres_->url());
    if (!opened.ok() || !(*opened)->Migrate().ok()) {
      ADD_FAILURE() << "cannot open and migrate the store";
      return;
    }
    store_ = opened->release();
  }
  static void TearDownTestSuite() {
    delete store_;
    store_ = nullptr;
    delete postgres_;
    postgres_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(store_, nullptr);
    Sql("TRUNCATE log_chunks, job_events, jobs, builds, agents");
    for (const char* agent : {"x86", "arm"}) {
      HelloMsg hello;
      hello.agent_id = agent;
      hello.hostname = std::string(agent) + ".local";
      hello.platforms = {{*ParsePlatform("linux/amd64"), false}};
      ASSERT_TRUE(store_->UpsertAgent(hello).ok());
    }
  }

  static pqxx::result Sql(const std::string& sql) {
    pqxx::connection connection(postgres_->url());
    pqxx::work tx(connection);
    pqxx::result result = tx.exec(sql);
    tx.commit();
    return result;
  }
  static int64_t Count(const std::string& sql) { return Sql(sql)[0][0].as<int64_t>(); }

  // A two-platform build; `run`: its amd64 job was assigned to x86 and wrote a log line.
  BuildRecord Submit(bool run = true) {
    BuildSpec spec;
    spec.platforms = {*ParsePlatform("linux/amd64"), *ParsePlatform("linux/arm64")};
    spec.tags = {"127.0.0.1:5000/app:latest"};
    spec.context_digest = Sha256Digest("context");
    spec.dockerfile = "FROM busybox\n";
    Result<std::pair<BuildRecord, bool>> created = store_->CreateBuild(spec, "");
    EXPECT_TRUE(created.ok()) << created.status().message();
    uint64_t amd = created->first.jobs[0].id;
    if (!run) return created->first;
    EXPECT_TRUE(store_->AssignJob(amd, "x86", false, "test placement").ok());
    EXPECT_TRUE(store_->AppendLog({amd, 1}, "x86", 1, "STEP 1/1\n", LogCap{})->current);
    return created->first;
  }
  BuildRecord Canceled() {
    BuildRecord build = Submit();
    EXPECT_TRUE(store_->CancelBuild(build.id).ok());
    return build;
  }
  BuildRecord Failed() {
    BuildRecord build = Submit();
    EXPECT_TRUE(store_->FailBuild(build.id, "merge failed").ok());
    return build;
  }
  // Moves a build's times (and its jobs', events' and logs') `age` into the past.
  static void Age(const BuildRecord& build, hours age) {
    std::string id = std::to_string(build.id), ago = std::to_string(age.count()) + " hours";
    Sql("UPDATE builds SET created_at = created_at - interval '" + ago +
        "', finished_at = finished_at - interval '" + ago + "' WHERE id = " + id);
  }
  // Rows anywhere that belong to the build: itself, its jobs, their events, its log.
  static int64_t RowsOf(const BuildRecord& build) {
    std::string id = std::to_string(build.id);
    return Count("SELECT (SELECT count(*) FROM builds WHERE id = " + id +
                 ") + (SELECT count(*) FROM jobs WHERE build_id = " + id +
                 ") + (SELECT count(*) FROM job_events e JOIN jobs j ON j.id = e.job_id "
                 "WHERE j.build_id = " +
                 id + ") + (SELECT count(*) FROM log_chunks WHERE build_id = " + id + ")");
  }

  static test::PostgresServer* postgres_;
  static Store* store_;
};

test::PostgresServer* StoreRetentionTest::postgres_ = nullptr;
Store* StoreRetentionTest::store_ = nullptr;

TEST_F(StoreRetentionTest, DeletesOnlyFinishedBuildsOlderThanTheRetentionWithAllTheirRows) {
  BuildRecord old_canceled = Canceled(), old_failed = Failed();
  BuildRecord young = Canceled();
  BuildRecord old_running = Submit(), old_queued = Submit(/*run=*/false);
  for (const BuildRecord* build : {&old_canceled, &old_failed, &old_running, &old_queued}) {
    Age(*build, hours(48));
  }
  Age(young, hours(12));
  const int64_t young_rows = RowsOf(young), running_rows = RowsOf(old_running),
                queued_rows = RowsOf(old_queued);
  ASSERT_GE(young_rows, 5);  // build, two jobs, their events, a log chunk

  Result<Counts> deleted = store_->PruneBuilds(hours(24), 500);
  ASSERT_TRUE(deleted.ok()) << deleted.status().message();
  EXPECT_EQ(*deleted, (Counts{{"canceled", 1}, {"failed", 1}}));

  for (const BuildRecord* gone : {&old_canceled, &old_failed}) {
    EXPECT_EQ(RowsOf(*gone), 0) << "build " << gone->id;
    Result<BuildRecord> read = store_->GetBuild(gone->id);
    ASSERT_FALSE(read.ok());
    EXPECT_EQ(read.status().code(), Status::Code::kNotFound);
    EXPECT_TRUE(*store_->BuildIdIssued(gone->id));
  }
  EXPECT_FALSE(*store_->BuildIdIssued(old_queued.id + 1000));
  // Younger than the retention, or not finished however old: whole.
  EXPECT_EQ(RowsOf(young), young_rows);
  EXPECT_EQ(RowsOf(old_running), running_rows);
  EXPECT_EQ(RowsOf(old_queued), queued_rows);
  EXPECT_EQ(store_->ListLogs(young.id, 0, 100)->size(), 1u);
  EXPECT_EQ(store_->ListLogs(old_running.id, 0, 100)->size(), 1u);
  EXPECT_EQ(store_->GetBuild(old_running.id)->state, "running");
  EXPECT_EQ(store_->GetBuild(old_queued.id)->state, "queued");
  // Nothing more is due.
  EXPECT_EQ(*store_->PruneBuilds(hours(24), 500), Counts{});
}

TEST_F(StoreRetentionTest, DeletesABatchAtATimeOldestFirst) {
  std::vector<BuildRecord> builds;
  for (int i = 0; i < 5; ++i) {
    builds.push_back(Canceled());
    Age(builds.back(), hours(100 - i));  // the first ended first
  }
  EXPECT_EQ(*store_->PruneBuilds(hours(1), 2), (Counts{{"canceled", 2}}));
  EXPECT_EQ(RowsOf(builds[0]) + RowsOf(builds[1]), 0);
  EXPECT_GT(RowsOf(builds[2]), 0);
  EXPECT_EQ(*store_->PruneBuilds(hours(1), 2), (Counts{{"canceled", 2}}));
  EXPECT_EQ(*store_->PruneBuilds(hours(1), 2), (Counts{{"canceled", 1}}));
  EXPECT_EQ(*store_->PruneBuilds(hours(1), 2), Counts{});
  EXPECT_EQ(Count("SELECT count(*) FROM builds"), 0);
}

TEST_F(StoreRetentionTest, DeletesAgentsGoneLongerUnlessConnectedOrNamedByAJob) {
  for (const char* agent : {"gone", "connected", "young"}) {
    HelloMsg hello;
    hello.agent_id = agent;
    hello.hostname = "h";
    hello.platforms = {{*ParsePlatform("linux/amd64"), false}};
    ASSERT_TRUE(store_->UpsertAgent(hello).ok());
  }
  BuildRecord kept = Canceled();  // its amd64 job names x86
  Sql("UPDATE agents SET last_seen = now() - interval '48 hours' WHERE id <> 'young'");

  Result<int> deleted = store_->PruneAgents(hours(24), {"connected"});
  ASSERT_TRUE(deleted.ok()) << deleted.status().message();
  EXPECT_EQ(*deleted, 2);  // "gone" and "arm": not connected, no job names them
  pqxx::result left = Sql("SELECT id FROM agents ORDER BY id");
  std::vector<std::string> ids;
  for (const auto& row : left) ids.push_back(row[0].as<std::string>());
  EXPECT_EQ(ids, (std::vector<std::string>{"connected", "x86", "young"}));

  // Once its build is gone, nothing names x86 any more.
  Age(kept, hours(48));
  ASSERT_EQ(*store_->PruneBuilds(hours(24), 500), (Counts{{"canceled", 1}}));
  EXPECT_EQ(*store_->PruneAgents(hours(24), {"connected"}), 1);
}

TEST_F(StoreRetentionTest, CountsUnfinishedAndFinishedBuildsApart) {
  Canceled();
  Canceled();
  Failed();
  Submit();               // running
  Submit(/*run=*/false);  // queued
  EXPECT_EQ(*store_->CountBuilds(false), (Counts{{"queued", 1}, {"running", 1}}));
  EXPECT_EQ(*store_->CountBuilds(true), (Counts{{"canceled", 2}, {"failed", 1}}));
}

}  // namespace
}  // namespace manifold
