// The live build view: the frame as a function of the state and the clock, and the
// escape sequences that redraw it in place.
#include <gtest/gtest.h>

#include <sstream>

#include "cli/progress_view.h"

namespace manifold {
namespace {

using std::chrono::milliseconds;
using Clock = PlatformProgress::Clock;

JobInfo Job(const char* platform, const char* state, int64_t attempt = 0, const char* agent = "",
            bool emulated = false) {
  JobInfo job;
  job.id = platform[6];  // distinct per platform in these tests
  job.platform = platform;
  job.state = state;
  job.attempt = attempt;
  job.agent = agent;
  job.emulated = emulated;
  return job;
}

BuildInfo Build(const std::string& state, std::vector<JobInfo> jobs) {
  BuildInfo build;
  build.id = 42;
  build.state = state;
  build.jobs = std::move(jobs);
  return build;
}

TEST(RenderProgress, EachPlatformWithItsStateAgentAndTime) {
  Clock::time_point t0{};
  ProgressView view(nullptr, 100);
  view.Update(Build("queued", {Job("linux/amd64", "pending"), Job("linux/arm64", "pending")}), t0);
  EXPECT_EQ(RenderProgress(view.state(), t0 + milliseconds(1500), 100),
            (std::vector<std::string>{
                "[+] Building 1.5s (0/2 platforms done)  build 42",
                " => linux/amd64    1.5s  queued",
                " => linux/arm64    1.5s  queued",
            }));

  // amd64 starts natively at 2 s; arm64 under emulation at 3 s and logs a line.
  view.Update(Build("running",
                    {Job("linux/amd64", "building", 1, "amd64-1"), Job("linux/arm64", "pending")}),
              t0 + milliseconds(2000));
  view.Update(Build("running", {Job("linux/amd64", "building", 1, "amd64-1"),
                                Job("linux/arm64", "building", 1, "arm64-1", true)}),
              t0 + milliseconds(3000));
  view.Write("linux/arm64", 1, "STEP 1/2: FROM busybox\nSTEP 2/2: RUN\tmake\x1b[0m\nhalf a li");
  EXPECT_EQ(RenderProgress(view.state(), t0 + milliseconds(5000), 100),
            (std::vector<std::string>{
                "[+] Building 5.0s (0/2 platforms done)  build 42",
                " => linux/amd64    3.0s  building on amd64-1 (native)",
                " => linux/arm64    2.0s  building on arm64-1 (emulated)",
                "      STEP 2/2: RUN make [0m",
            }));

  // amd64 is pushed at 6 s: its time stops there. arm64 fails on attempt 1 and is queued.
  JobInfo pushed = Job("linux/amd64", "succeeded", 1, "amd64-1");
  pushed.manifest_digest = "sha256:0123456789abcdef0123456789abcdef";
  view.Update(Build("running", {pushed, Job("linux/arm64", "pending", 1)}),
              t0 + milliseconds(6000));
  EXPECT_EQ(RenderProgress(view.state(), t0 + milliseconds(70000), 100),
            (std::vector<std::string>{
                "[+] Building 1m10s (1/2 platforms done)  build 42",
                " ✔  linux/amd64    4.0s  pushed sha256:0123456789ab",
                " => linux/arm64   1m10s  queued again for attempt 2",
                "      STEP 2/2: RUN make [0m",
            }));

  JobInfo failed = Job("linux/arm64", "failed", 2, "arm64-2", true);
  failed.error = "RUN make: exit status 2";
  view.Update(Build("failed", {pushed, failed}), t0 + milliseconds(80000));
  EXPECT_EQ(RenderProgress(view.state(), t0 + milliseconds(99000), 100),
            (std::vector<std::string>{
                "[+] Built 1m20s (2/2 platforms done)  build 42 failed",
                " ✔  linux/amd64    4.0s  pushed sha256:0123456789ab",
                " ✘  linux/arm64   1m20s  failed: RUN make: exit status 2",
            }));
}

TEST(RenderProgress, AQueuedJobSaysWhyItWaits) {
  ProgressView view(nullptr, 100);
  JobInfo waiting = Job("linux/arm/v7", "pending");
  waiting.placement = "no connected agent serves linux/arm/v7 (agents serve linux/amd64)";
  view.Update(Build("queued", {waiting}), Clock::time_point{});
  EXPECT_EQ(RenderProgress(view.state(), Clock::time_point{}, 100)[1],
            " => linux/arm/v7    0.0s  queued: no connected agent serves linux/arm/v7 (agents "
            "serve linux/amd64)");
}

TEST(RenderProgress, LinesNeverExceedTheWidth) {
  ProgressView view(nullptr, 30);
  JobInfo failed = Job("linux/arm64", "failed", 1, "a");
  failed.error = std::string(200, 'x');
  view.Update(Build("failed", {failed}), Clock::time_point{});
  for (const std::string& line : RenderProgress(view.state(), Clock::time_point{}, 30)) {
    size_t columns = 0;
    for (char c : line) columns += (c & 0xC0) != 0x80;
    EXPECT_LE(columns, 30u) << line;
  }
  EXPECT_EQ(RenderProgress(view.state(), Clock::time_point{}, 30)[1],
            " ✘  linux/arm64    0.0s  fail…");
}

TEST(ProgressView, RedrawsInPlaceAndEndsWithTheFailedPlatformsLog) {
  std::ostringstream out;
  ProgressView view(&out, 80);
  Clock::time_point t0{};
  view.Update(Build("queued", {Job("linux/arm64", "pending")}), t0);
  view.Draw(t0);
  std::string first = out.str();
  EXPECT_EQ(first,
            "\x1b[2K[+] Building 0.0s (0/1 platforms done)  build 42\n"
            "\x1b[2K => linux/arm64    0.0s  queued\n\x1b[J");
  out.str("");
  view.Update(Build("running", {Job("linux/arm64", "building", 1, "arm64-1")}), t0);
  view.Write("linux/arm64", 1, "RUN false\n");
  view.Draw(t0 + milliseconds(1000));
  // Back up over the two lines drawn before, then three lines (with the log line).
  EXPECT_EQ(out.str(),
            "\x1b[2F"
            "\x1b[2K[+] Building 1.0s (0/1 platforms done)  build 42\n"
            "\x1b[2K => linux/arm64    1.0s  building on arm64-1 (native)\n"
            "\x1b[2K      RUN false\n\x1b[J");
  out.str("");
  view.Write("linux/arm64", 1, "exit status 1");
  JobInfo failed = Job("linux/arm64", "failed", 1, "arm64-1");
  failed.error = "exit status 1";
  view.Update(Build("failed", {failed}), t0 + milliseconds(2000));
  view.Finish(t0 + milliseconds(2000));
  EXPECT_EQ(out.str(),
            "\x1b[3F"
            "\x1b[2K[+] Built 2.0s (1/1 platforms done)  build 42 failed\n"
            "\x1b[2K ✘  linux/arm64    2.0s  failed: exit status 1\n\x1b[J"
            "\n---- linux/arm64: last 2 log lines ----\n"
            "RUN false\n"
            "exit status 1\n");
}

}  // namespace
}  // namespace manifold
