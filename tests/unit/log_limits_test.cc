// Build output bounded by size: a job's stored log keeps its head and tail with the cut
// marked (coordinator/log_cap.h), an agent's held output does the same (OutputBuffer), and
// output waiting for an absent database is capped by bytes, with its agents told to hold
// theirs and to resume once it is stored (JobReports with LogFlow, on the in-memory store).
#include <gtest/gtest.h>

#include "agent/output_buffer.h"
#include "coordinator/job_reports.h"
#include "coordinator/log_cap.h"
#include "tests/support/memory_store.h"

namespace manifold {
namespace {

TEST(LogCapTest, TheHeadFillsFirstThenTheTailIsCutBackInBatchesNeverItsNewestChunk) {
  const LogCap cap{1000};
  JobLogSpan span;
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(AddToHead(cap, span, 100));
  EXPECT_FALSE(span.head_full);
  EXPECT_TRUE(AddToHead(cap, span, 150));  // fills the head, and stays in it whole
  EXPECT_TRUE(span.head_full);
  EXPECT_EQ(span.head_bytes, 550u);
  EXPECT_FALSE(AddToHead(cap, span, 600));
  EXPECT_FALSE(TailDueForCut(cap, span));  // a quarter past the half is allowed
  EXPECT_FALSE(AddToHead(cap, span, 100));
  EXPECT_TRUE(TailDueForCut(cap, span));
  EXPECT_EQ(ChunksToCut(cap, {600, 100}), 1u);
  EXPECT_EQ(ChunksToCut(cap, {100, 100, 100, 100, 100, 100, 100}), 2u);
  EXPECT_EQ(ChunksToCut(cap, {5000}), 0u);  // the newest chunk stays, however large
  EXPECT_NE(LogCutMarker(6 << 20).find("6291456 bytes cut here"), std::string::npos);
}

TEST(LogCapTest, ZeroKeepsEverything) {
  const LogCap cap{0};
  JobLogSpan span;
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(AddToHead(cap, span, 1 << 20));
  EXPECT_FALSE(TailDueForCut(cap, span));
}

TEST(OutputBufferTest, KeepsTheFirstAndLastHalfWithAMarkerWhereItCut) {
  OutputBuffer buffer(1000);
  buffer.Append("small");
  EXPECT_EQ(buffer.Take(), "small");
  EXPECT_TRUE(buffer.empty());
  for (int i = 0; i < 10000; ++i) buffer.Append(std::to_string(i % 10));
  const uint64_t cut = buffer.TakeNewlyCut();
  EXPECT_GT(cut, 8000u);
  std::string text = buffer.Take();
  std::string head, tail;
  for (int i = 0; i < 500; ++i) head += std::to_string(i % 10);
  for (int i = 10000 - 500; i < 10000; ++i) tail += std::to_string(i % 10);
  EXPECT_EQ(text.substr(0, 500), head);
  EXPECT_EQ(text.substr(text.size() - 500), tail);
  EXPECT_EQ(text.find(OutputBuffer::Marker(cut)), 500u) << text.substr(500, 200);
  // The tail is cut in batches: it may hold up to a quarter more than its half.
  EXPECT_EQ(text.size(), 10000 - cut + OutputBuffer::Marker(cut).size());
  EXPECT_LE(10000 - cut, 1000u + 125u);
  EXPECT_TRUE(buffer.empty());
}

class LogBackPressureTest : public ::testing::Test {
 protected:
  LogBackPressureTest() {
    HelloMsg hello;
    hello.agent_id = "a1";
    hello.platforms = {{*ParsePlatform("linux/amd64"), false}};
    EXPECT_TRUE(store_.UpsertAgent(hello).ok());
    BuildSpec spec;
    spec.platforms = {*ParsePlatform("linux/amd64")};
    spec.tags = {"registry.test/app:latest"};
    spec.context_digest = "sha256:" + std::string(64, 'c');
    build_ = store_.CreateBuild(spec).value();
    EXPECT_TRUE(store_.AssignJobs({{build_.jobs[0].id, "a1", false, "native"}}).ok());
  }

  // Sends `count` chunks of `bytes` each from a1, numbered on from the last.
  void Flood(int count, size_t bytes, char fill) {
    for (int i = 0; i < count; ++i) {
      reports_.AddLog("a1", {job(), ++seq_, std::string(bytes, fill)}, now_);
      max_queued_ = std::max(max_queued_, reports_.logs_queued_bytes());
    }
  }
  JobRef job() const { return {build_.jobs[0].id, 1}; }

  test::MemoryStore store_;
  Metrics metrics_;
  LoopClock::time_point now_{std::chrono::hours(1)};
  std::vector<std::pair<std::string, bool>> flow_;  // what agents were told
  JobReports reports_{
      store_,
      metrics_,
      3,
      LogLimits{.job_max_bytes = 256 << 10, .pending_max_bytes = 1 << 20},
      {[](const JobReports::Phase&, bool) {},
       [](const std::string&, const JobResultMsg&, const ResultOutcome&, LoopClock::time_point) {},
       [this](const std::string& agent_id, bool hold) { flow_.emplace_back(agent_id, hold); }}};
  BuildRecord build_;
  uint64_t seq_ = 0;
  uint64_t max_queued_ = 0;
};

TEST_F(LogBackPressureTest, AnAbsentDatabaseHoldsTheAgentAndBoundsTheBacklogThenResumesIt) {
  store_.SetAvailable(false);
  Flood(640, 16 << 10, 'h');  // 10 MiB, ten times the backlog's cap
  EXPECT_EQ(flow_, (std::vector<std::pair<std::string, bool>>{{"a1", true}}));
  EXPECT_LE(max_queued_, uint64_t{1} << 20);
  EXPECT_GE(max_queued_, uint64_t{1} << 19);

  store_.SetAvailable(true);
  now_ += std::chrono::seconds(1);
  reports_.Flush(now_);
  EXPECT_EQ(reports_.logs_queued_bytes(), 0u);
  EXPECT_EQ(flow_.back(), (std::pair<std::string, bool>{"a1", false}));
  Flood(4, 16 << 10, 't');  // the held output, sent once told to resume

  std::vector<LogChunkRecord> chunks = store_.ListLogs(build_.id, 0, 1000).value();
  std::string text;
  for (const LogChunkRecord& chunk : chunks) {
    if (chunk.cut_before > 0) text += LogCutMarker(chunk.cut_before);
    text += chunk.data;
  }
  EXPECT_EQ(text.substr(0, 100), std::string(100, 'h'));
  EXPECT_EQ(text.substr(text.size() - 100), std::string(100, 't'));
  EXPECT_NE(text.find("bytes cut here"), std::string::npos);
  EXPECT_NE(text.find("bytes of output lost here"), std::string::npos);
  EXPECT_LE(text.size(), (256u << 10) * 5 / 4 + 64 * 1024);
}

}  // namespace
}  // namespace manifold
