// Retention (coordinator/retention.h): the duration its flag takes, that its deletes and
// counts run on its own thread (by design: the caller, like the agent loop, never runs
// them), that a pass deletes batch after batch until one comes back short, and that the
// builds gauge follows what was counted, what ended and what was deleted.
#include "coordinator/retention.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

namespace manifold {
namespace {

using std::chrono::seconds;

TEST(ParseRetentionTest, TakesDaysHoursMinutesSecondsAndBareSeconds) {
  EXPECT_EQ(*ParseRetention("--retention", "30d"), seconds(30 * 86400));
  EXPECT_EQ(*ParseRetention("--retention", "12h"), seconds(12 * 3600));
  EXPECT_EQ(*ParseRetention("--retention", "90m"), seconds(90 * 60));
  EXPECT_EQ(*ParseRetention("--retention", "60s"), seconds(60));
  EXPECT_EQ(*ParseRetention("--log-retention", "3600"), seconds(3600));  // the old flag's form
  EXPECT_EQ(*ParseRetention("--retention", "0"), seconds(0));
  for (const char* bad : {"", "d", "1w", "-1d", "1.5h", "30 d", "99999999999d"}) {
    Result<seconds> parsed = ParseRetention("--retention", bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_NE(parsed.status().message().find("--retention takes a duration such as 30d"),
              std::string::npos)
        << parsed.status().message();
  }
}

TEST(ParseRetentionTest, FormatsInTheLargestWholeUnit) {
  EXPECT_EQ(FormatRetention(seconds(30 * 86400)), "30 days");
  EXPECT_EQ(FormatRetention(seconds(3600)), "1 hour");
  EXPECT_EQ(FormatRetention(seconds(120)), "2 minutes");
  EXPECT_EQ(FormatRetention(seconds(90)), "90 seconds");
}

// A store that answers from scripts and records which thread asked.
class ScriptedRetentionStore : public RetentionStore {
 public:
  std::vector<std::map<std::string, int>> batches;  // PruneBuilds' answers, in turn
  std::map<std::string, int> finished = {{"succeeded", 7}, {"failed", 2}, {"canceled", 1}};

  Result<std::map<std::string, int>> PruneBuilds(seconds keep, int max_builds) override {
    std::lock_guard lock(mutex_);
    threads_.insert(std::this_thread::get_id());
    keep_ = keep;
    max_builds_ = max_builds;
    std::map<std::string, int> batch;
    if (prune_calls_ < batches.size()) batch = batches[prune_calls_];
    ++prune_calls_;
    return batch;
  }
  Result<int> PruneAgents(seconds, const std::vector<std::string>& connected) override {
    std::lock_guard lock(mutex_);
    threads_.insert(std::this_thread::get_id());
    connected_ = connected;
    ++agent_passes_;
    changed_.notify_all();
    return 0;
  }
  Result<std::map<std::string, int>> CountBuilds(bool finished_ones) override {
    std::lock_guard lock(mutex_);
    if (finished_ones) {
      finished_counted_on_ = std::this_thread::get_id();
      return finished;
    }
    threads_.insert(std::this_thread::get_id());
    return std::map<std::string, int>{{"queued", 4}, {"running", 3}};
  }

  // Waits (bounded) for the first deletion pass to end.
  bool WaitForPass() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, seconds(30), [&] { return agent_passes_ > 0; });
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::set<std::thread::id> threads_;
  std::thread::id finished_counted_on_;
  size_t prune_calls_ = 0;
  int agent_passes_ = 0;
  seconds keep_{0};
  int max_builds_ = 0;
  std::vector<std::string> connected_;
};

std::string Scrape(int port) {
  httplib::Client client("127.0.0.1", port);
  auto response = client.Get("/metrics");
  return response ? response->body : "";
}

TEST(RetentionTest, DeletesOnItsOwnThreadInBatchesAndKeepsTheBuildsGauge) {
  ScriptedRetentionStore store;
  store.batches = {{{"succeeded", 2}}, {{"failed", 1}, {"canceled", 1}}, {{"succeeded", 1}}};
  Metrics metrics;
  int port = metrics.Serve("127.0.0.1:0");
  ASSERT_GT(port, 0);
  Retention retention(store, metrics,
                      {.keep = seconds(3600), .batch_builds = 2, .connected_agents = [] {
                         return std::vector<std::string>{"a1", "a2"};
                       }});
  ASSERT_TRUE(retention.Start().ok());
  // The finished builds are counted once, before Start returns; a build that ends after
  // it moves the gauge through CountBuild.
  EXPECT_EQ(store.finished_counted_on_, std::this_thread::get_id());
  metrics.CountBuild("succeeded");
  ASSERT_TRUE(store.WaitForPass());
  retention.Stop();

  std::lock_guard lock(store.mutex_);
  // Every delete and count after Start ran on one thread that is not the caller's.
  ASSERT_EQ(store.threads_.size(), 1u);
  EXPECT_NE(*store.threads_.begin(), std::this_thread::get_id());
  // Two full batches, then a short one ended the pass; then the agents, minus those
  // connected.
  EXPECT_EQ(store.prune_calls_, 3u);
  EXPECT_EQ(store.keep_, seconds(3600));
  EXPECT_EQ(store.max_builds_, 2);
  EXPECT_EQ(store.connected_, (std::vector<std::string>{"a1", "a2"}));
  std::string text = Scrape(port);
  EXPECT_NE(text.find("manifold_builds{state=\"succeeded\"} 5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("manifold_builds{state=\"failed\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("manifold_builds{state=\"canceled\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("manifold_builds{state=\"queued\"} 4\n"), std::string::npos) << text;
  EXPECT_NE(text.find("manifold_builds{state=\"running\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("manifold_builds{state=\"merging\"} 0\n"), std::string::npos) << text;
}

// A retention of 0 keeps everything: the gauge is kept, nothing is deleted.
TEST(RetentionTest, ZeroKeepsEverything) {
  ScriptedRetentionStore store;
  Metrics metrics;
  Retention retention(store, metrics, {.keep = seconds(0), .count_every = seconds(3600), .connected_agents = {}});
  ASSERT_TRUE(retention.Start().ok());
  retention.Stop();  // returns at once, though the next count is an hour away
  std::lock_guard lock(store.mutex_);
  EXPECT_EQ(store.prune_calls_, 0u);
  EXPECT_EQ(store.agent_passes_, 0);
}

}  // namespace
}  // namespace manifold
