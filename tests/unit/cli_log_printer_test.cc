#include <gtest/gtest.h>

#include <sstream>

#include "cli/log_printer.h"

namespace manifold {
namespace {

TEST(LogPrinter, JoinsLinesSplitAcrossChunksPerPlatform) {
  std::ostringstream out;
  LogPrinter printer(&out);
  printer.Write("linux/arm64", 1, "STEP 1/3: FR");
  printer.Write("linux/amd64", 1, "STEP 1/3: FROM busybox\nSTEP 2/3: RU");
  EXPECT_EQ(out.str(), "[linux/amd64] STEP 1/3: FROM busybox\n");
  printer.Write("linux/arm64", 1, "OM busybox\n");
  printer.Write("linux/amd64", 1, "N uname -m\n");
  EXPECT_EQ(out.str(),
            "[linux/amd64] STEP 1/3: FROM busybox\n"
            "[linux/arm64] STEP 1/3: FROM busybox\n"
            "[linux/amd64] STEP 2/3: RUN uname -m\n");
}

TEST(LogPrinter, KeepsPartialLineUntilFlush) {
  std::ostringstream out;
  LogPrinter printer(&out);
  printer.Write("linux/arm64", 1, "a\nb\nno newline yet");
  EXPECT_EQ(out.str(), "[linux/arm64] a\n[linux/arm64] b\n");
  printer.Write("linux/arm64", 1, "");
  EXPECT_EQ(out.str(), "[linux/arm64] a\n[linux/arm64] b\n");
  printer.Flush();
  EXPECT_EQ(out.str(), "[linux/arm64] a\n[linux/arm64] b\n[linux/arm64] no newline yet\n");
  printer.Flush();  // nothing left to print
  EXPECT_EQ(out.str(), "[linux/arm64] a\n[linux/arm64] b\n[linux/arm64] no newline yet\n");
}

TEST(LogPrinter, ChunkOfOneByteAtATime) {
  std::ostringstream out;
  LogPrinter printer(&out);
  for (char c : std::string("x1\ny2\n")) printer.Write("linux/amd64", 1, std::string(1, c));
  EXPECT_EQ(out.str(), "[linux/amd64] x1\n[linux/amd64] y2\n");
}

TEST(LogPrinter, StripsCarriageReturnsAndKeepsLastRedraw) {
  std::ostringstream out;
  LogPrinter printer(&out);
  printer.Write("linux/amd64", 1, "crlf line\r\n10%\r50%\r100%\n\n");
  EXPECT_EQ(out.str(), "[linux/amd64] crlf line\n[linux/amd64] 100%\n[linux/amd64]\n");
}

TEST(LogPrinter, NewAttemptFlushesTheOldAttemptsPartialLine) {
  std::ostringstream out;
  LogPrinter printer(&out);
  printer.Write("linux/arm64", 1, "lost in the mid");
  printer.Write("linux/arm64", 2, "STEP 1/3\n");
  EXPECT_EQ(out.str(), "[linux/arm64] lost in the mid\n[linux/arm64] STEP 1/3\n");
}

TEST(LogPrinter, MessageLineLeavesPartialLogLineAlone) {
  std::ostringstream out;
  LogPrinter printer(&out);
  printer.Write("linux/amd64", 1, "half");
  printer.Line("linux/amd64", "pushed sha256:abc");
  printer.Write("linux/amd64", 1, " line\n");
  printer.Line("", "pushing the image index");
  EXPECT_EQ(out.str(),
            "[linux/amd64] pushed sha256:abc\n"
            "[linux/amd64] half line\n"
            "[build] pushing the image index\n");
}

}  // namespace
}  // namespace manifold
