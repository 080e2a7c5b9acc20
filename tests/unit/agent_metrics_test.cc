#include <gtest/gtest.h>

#include "agent/metrics.h"
#include "common/http_client.h"

namespace manifold {
namespace {

std::vector<PlatformOffer> Offers() {
  return {{*ParsePlatform("linux/amd64"), false}, {*ParsePlatform("linux/arm64"), true}};
}

void ExpectSeries(const std::string& text, const std::vector<std::string>& series) {
  for (const std::string& line : series) {
    EXPECT_NE(text.find(line + "\n"), std::string::npos) << line << "\n" << text;
  }
}

TEST(AgentMetricsTest, SeriesExistAtZeroBeforeTheFirstJob) {
  AgentMetrics metrics(Offers(), 3, "1.2.3");
  std::string text = metrics.Text();
  ExpectSeries(text, {
                         "manifold_agent_info{version=\"1.2.3\"} 1",
                         "manifold_agent_job_slots 3",
                         "manifold_agent_job_slots_busy 0",
                         "manifold_agent_draining 0",
                         "manifold_agent_platform_emulated{platform=\"linux/amd64\"} 0",
                         "manifold_agent_platform_emulated{platform=\"linux/arm64\"} 1",
                         "manifold_agent_jobs_total{platform=\"linux/arm64\",result=\"failed\"} 0",
                         "manifold_agent_registry_uploaded_bytes_total{platform=\"linux/amd64\"} 0",
                         "manifold_agent_registry_skipped_bytes_total{platform=\"linux/arm64\"} 0",
                         "manifold_agent_build_duration_seconds_count{platform=\"linux/amd64\","
                         "result=\"succeeded\"} 0",
                         "manifold_agent_push_duration_seconds_count{platform=\"linux/arm64\","
                         "result=\"failed\"} 0",
                         "manifold_agent_cache_steps_total{platform=\"linux/amd64\","
                         "result=\"hit\"} 0",
                         "manifold_agent_cache_steps_total{platform=\"linux/arm64\","
                         "result=\"miss\"} 0",
                     });
  // Every family says what it measures.
  for (const char* family :
       {"manifold_agent_jobs_total", "manifold_agent_build_duration_seconds",
        "manifold_agent_push_duration_seconds", "manifold_agent_registry_blobs_total"}) {
    EXPECT_NE(text.find(std::string("# HELP ") + family + " "), std::string::npos) << family;
  }
}

TEST(AgentMetricsTest, JobsBuildsAndPushesAreCounted) {
  AgentMetrics metrics(Offers(), 2, "1.2.3");
  Platform arm = *ParsePlatform("linux/arm64");
  metrics.CountJob(arm, "succeeded");
  metrics.CountJob(arm, "succeeded");
  metrics.CountJob(arm, "failed_retryable");
  metrics.ObserveBuild(arm, "succeeded", 42.0);
  PushStats first;
  first.blobs_pushed = 2;
  first.bytes_pushed = 1000;
  first.blobs_skipped = 1;
  first.bytes_skipped = 300;
  metrics.ObservePush(arm, "succeeded", 1.5, first);
  PushStats second;  // a failed push still moved its first blob
  second.blobs_pushed = 1;
  second.bytes_pushed = 24;
  second.requests_retried = 2;
  metrics.ObservePush(arm, "failed", 0.2, second);
  metrics.SetSlotsBusy(2);
  metrics.SetDraining(true);
  ExpectSeries(metrics.Text(),
               {
                   "manifold_agent_jobs_total{platform=\"linux/arm64\",result=\"succeeded\"} 2",
                   "manifold_agent_jobs_total{platform=\"linux/arm64\",result=\"failed_retryable\"}"
                   " 1",
                   "manifold_agent_jobs_total{platform=\"linux/amd64\",result=\"succeeded\"} 0",
                   "manifold_agent_build_duration_seconds_count{platform=\"linux/arm64\","
                   "result=\"succeeded\"} 1",
                   "manifold_agent_build_duration_seconds_sum{platform=\"linux/arm64\","
                   "result=\"succeeded\"} 42",
                   // 42 s lands in the 60 s bucket, not the 30 s one.
                   "manifold_agent_build_duration_seconds_bucket{platform=\"linux/arm64\","
                   "result=\"succeeded\",le=\"30\"} 0",
                   "manifold_agent_build_duration_seconds_bucket{platform=\"linux/arm64\","
                   "result=\"succeeded\",le=\"60\"} 1",
                   "manifold_agent_push_duration_seconds_count{platform=\"linux/arm64\","
                   "result=\"failed\"} 1",
                   "manifold_agent_registry_uploaded_bytes_total{platform=\"linux/arm64\"} 1024",
                   "manifold_agent_registry_skipped_bytes_total{platform=\"linux/arm64\"} 300",
                   "manifold_agent_registry_blobs_total{outcome=\"uploaded\",platform=\"linux/"
                   "arm64\"} 3",
                   "manifold_agent_registry_blobs_total{outcome=\"skipped\",platform=\"linux/"
                   "arm64\"} 1",
                   "manifold_agent_registry_requests_retried_total{platform=\"linux/arm64\"} 2",
                   "manifold_agent_job_slots_busy 2",
                   "manifold_agent_draining 1",
               });
}

TEST(AgentMetricsTest, RegistryRequestsCacheStepsAndCacheBytesAreCounted) {
  AgentMetrics metrics(Offers(), 1, "1.2.3");
  Platform amd = *ParsePlatform("linux/amd64");
  metrics.CountRegistryRequest(amd, RegistryOperation::kBlobHead, 404);
  metrics.CountRegistryRequest(amd, RegistryOperation::kBlobHead, 404);
  metrics.CountRegistryRequest(amd, RegistryOperation::kManifestPut, 201);
  metrics.CountRegistryRequest(amd, RegistryOperation::kBlobUploadStart, 0);
  metrics.CountCacheSteps(amd, 3, 1);
  metrics.CountCacheSteps(amd, 0, 2);
  metrics.CountCacheBytes(amd, 5000, 0);
  metrics.CountCacheBytes(amd, 0, 700);
  metrics.CountCacheBytes(amd, 1, 2);
  ExpectSeries(metrics.Text(),
               {
                   "manifold_agent_registry_requests_total{operation=\"blob_head\",platform=\""
                   "linux/amd64\",status=\"404\"} 2",
                   "manifold_agent_registry_requests_total{operation=\"manifest_put\","
                   "platform=\"linux/amd64\",status=\"201\"} 1",
                   "manifold_agent_registry_requests_total{operation=\"blob_upload_start\","
                   "platform=\"linux/amd64\",status=\"error\"} 1",
                   "manifold_agent_cache_steps_total{platform=\"linux/amd64\",result=\"hit\"} 3",
                   "manifold_agent_cache_steps_total{platform=\"linux/amd64\",result=\"miss\"} 3",
                   "manifold_agent_cache_steps_total{platform=\"linux/arm64\",result=\"hit\"} 0",
                   "manifold_agent_cache_bytes_pulled_total{platform=\"linux/amd64\"} 5001",
                   "manifold_agent_cache_bytes_pushed_total{platform=\"linux/amd64\"} 702",
                   "manifold_agent_cache_bytes_pulled_total{platform=\"linux/arm64\"} 0",
                   "manifold_agent_cache_bytes_pushed_total{platform=\"linux/arm64\"} 0",
               });
}

TEST(AgentMetricsTest, ServesOverHttpAndRefusesAPortInUse) {
  AgentMetrics metrics(Offers(), 1, "1.2.3");
  int port = metrics.Serve("127.0.0.1:0");
  ASSERT_GT(port, 0);
  HttpRequest request;
  request.url = "http://127.0.0.1:" + std::to_string(port) + "/metrics";
  request.timeout_ms = 10000;
  Result<HttpResponse> response = HttpClient().Send(request);
  ASSERT_TRUE(response.ok()) << response.status().message();
  EXPECT_EQ(response->status, 200);
  EXPECT_NE(response->body.find("manifold_agent_job_slots 1"), std::string::npos);

  AgentMetrics second(Offers(), 1, "1.2.3");
  EXPECT_EQ(second.Serve("127.0.0.1:" + std::to_string(port)), -1);
}

}  // namespace
}  // namespace manifold
