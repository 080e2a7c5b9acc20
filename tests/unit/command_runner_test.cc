#include "agent/command_runner.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace manifold {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Every test command gets a watchdog: if it has not finished by then, it is canceled, so
// a hang shows up as a failed test instead of a stuck test binary.
constexpr auto kWatchdog = seconds(20);

struct RunOutcome {
  Result<int> result = Status::Internal("not run");
  std::string output;
  std::vector<std::string> chunks;
  Clock::duration elapsed{};
};

RunOutcome RunWithWatchdog(CommandRunner& runner, const CommandSpec& spec) {
  RunOutcome outcome;
  std::atomic<bool> cancel{false};
  std::mutex mu;
  bool done = false;
  std::condition_variable cv;
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, kWatchdog, [&] { return done; })) cancel = true;
  });
  Clock::time_point start = Clock::now();
  outcome.result = runner.Run(
      spec,
      [&](std::string_view chunk) {
        outcome.output.append(chunk);
        outcome.chunks.emplace_back(chunk);
      },
      &cancel);
  outcome.elapsed = Clock::now() - start;
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  watchdog.join();
  return outcome;
}

RunOutcome RunShell(const std::string& script, const CommandSpec& base = {}) {
  SubprocessRunner runner;
  CommandSpec spec = base;
  spec.argv = {"/bin/sh", "-c", script};
  return RunWithWatchdog(runner, spec);
}

// No child of this process is left unreaped (Run must reap everything it starts).
void ExpectNoChildren() {
  int status = 0;
  EXPECT_EQ(::waitpid(-1, &status, WNOHANG), -1) << "an unreaped child remains";
  EXPECT_EQ(errno, ECHILD);
}

struct ProcessInfo {
  pid_t pid;
  std::string command;  // the kernel's comm: "sh", "sleep"
};

// The live processes of a process group, from /proc; zombies count as gone because they
// run nothing (an orphan's zombie waits for init, which may be slow to reap it).
std::vector<ProcessInfo> LiveProcessesInGroup(pid_t pgid) {
  std::vector<ProcessInfo> found;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t open = stat.find('(');
    size_t paren = stat.rfind(')');
    if (open == std::string::npos || paren == std::string::npos) continue;  // it went away
    std::istringstream fields(stat.substr(paren + 1));
    char state = 0;
    pid_t ppid = 0, group = 0;
    fields >> state >> ppid >> group;
    if (group == pgid && state != 'Z' && state != 'X') {
      found.push_back({std::stoi(name), stat.substr(open + 1, paren - open - 1)});
    }
  }
  return found;
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "command_runner_test.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

TEST(SubprocessRunnerTest, ReturnsExitCodes) {
  RunOutcome ok = RunShell("exit 0");
  ASSERT_TRUE(ok.result.ok()) << ok.result.status().message();
  EXPECT_EQ(*ok.result, 0);

  RunOutcome seven = RunShell("exit 7");
  ASSERT_TRUE(seven.result.ok()) << seven.result.status().message();
  EXPECT_EQ(*seven.result, 7);

  RunOutcome killed = RunShell("kill -KILL $$");
  ASSERT_TRUE(killed.result.ok()) << killed.result.status().message();
  EXPECT_EQ(*killed.result, 128 + SIGKILL);
  ExpectNoChildren();
}

TEST(SubprocessRunnerTest, CapturesStdoutAndStderr) {
  RunOutcome outcome = RunShell("echo to-stdout; echo to-stderr >&2; echo again");
  ASSERT_TRUE(outcome.result.ok()) << outcome.result.status().message();
  EXPECT_EQ(outcome.output, "to-stdout\nto-stderr\nagain\n");
}

TEST(SubprocessRunnerTest, OutputWithoutFinalNewlineIsDelivered) {
  RunOutcome outcome = RunShell("printf 'line\\npartial'");
  ASSERT_TRUE(outcome.result.ok()) << outcome.result.status().message();
  EXPECT_EQ(outcome.output, "line\npartial");
}

TEST(SubprocessRunnerTest, StdinIsDevNull) {
  // cat would wait forever on an inherited terminal or pipe.
  RunOutcome outcome = RunShell("cat; echo done");
  ASSERT_TRUE(outcome.result.ok()) << outcome.result.status().message();
  EXPECT_EQ(outcome.output, "done\n");
}

TEST(SubprocessRunnerTest, EnvOverridesAddAndReplaceAndKeepTheRest) {
  ASSERT_EQ(::setenv("MANIFOLD_TEST_INHERITED", "from-parent", 1), 0);
  ASSERT_EQ(::setenv("MANIFOLD_TEST_REPLACED", "old", 1), 0);
  CommandSpec spec;
  spec.env_overrides = {{"MANIFOLD_TEST_ADDED", "a b c"}, {"MANIFOLD_TEST_REPLACED", "new"}};
  RunOutcome outcome = RunShell(
      "echo \"$MANIFOLD_TEST_ADDED|$MANIFOLD_TEST_REPLACED|$MANIFOLD_TEST_INHERITED\"", spec);
  ::unsetenv("MANIFOLD_TEST_INHERITED");
  ::unsetenv("MANIFOLD_TEST_REPLACED");
  ASSERT_TRUE(outcome.result.ok()) << outcome.result.status().message();
  EXPECT_EQ(outcome.output, "a b c|new|from-parent\n");
}

TEST(SubprocessRunnerTest, RejectsMalformedEnvName) {
  CommandSpec spec;
  spec.env_overrides = {{"A=B", "x"}};
  RunOutcome outcome = RunShell("true", spec);
  ASSERT_FALSE(outcome.result.ok());
  EXPECT_EQ(outcome.result.status().code(), Status::Code::kInvalidArgument);
}

TEST(SubprocessRunnerTest, RunsInWorkingDir) {
  TempDir dir;
  CommandSpec spec;
  spec.working_dir = dir.path().string();
  RunOutcome outcome = RunShell("pwd -P", spec);
  ASSERT_TRUE(outcome.result.ok()) << outcome.result.status().message();
  EXPECT_EQ(outcome.output, fs::canonical(dir.path()).string() + "\n");
}

TEST(SubprocessRunnerTest, MissingWorkingDirIsAnError) {
  TempDir dir;
  CommandSpec spec;
  spec.working_dir = (dir.path() / "absent").string();
  RunOutcome outcome = RunShell("true", spec);
  ASSERT_FALSE(outcome.result.ok());
  EXPECT_EQ(outcome.result.status().code(), Status::Code::kNotFound);
  EXPECT_NE(outcome.result.status().message().find(spec.working_dir), std::string::npos)
      << outcome.result.status().message();
}

TEST(SubprocessRunnerTest, MissingProgramIsAnErrorNamingIt) {
  SubprocessRunner runner;
  RunOutcome by_name = RunWithWatchdog(runner, {{"manifold-no-such-program", "x"}, {}, ""});
  ASSERT_FALSE(by_name.result.ok());
  EXPECT_EQ(by_name.result.status().code(), Status::Code::kNotFound);
  EXPECT_NE(by_name.result.status().message().find("manifold-no-such-program"), std::string::npos)
      << by_name.result.status().message();

  TempDir dir;
  std::string absent = (dir.path() / "missing-tool").string();
  RunOutcome by_path = RunWithWatchdog(runner, {{absent}, {}, ""});
  ASSERT_FALSE(by_path.result.ok());
  EXPECT_EQ(by_path.result.status().code(), Status::Code::kNotFound);
  EXPECT_NE(by_path.result.status().message().find(absent), std::string::npos)
      << by_path.result.status().message();
  ExpectNoChildren();
}

TEST(SubprocessRunnerTest, FindsProgramInPathOverride) {
  TempDir dir;
  fs::path tool = dir.path() / "manifold-test-tool";
  {
    std::ofstream out(tool);
    out << "#!/bin/sh\necho tool-ran \"$@\"\n";
  }
  fs::permissions(tool, fs::perms::owner_all);
  SubprocessRunner runner;
  CommandSpec spec{
      {"manifold-test-tool", "arg"}, {{"PATH", dir.path().string() + ":/usr/bin:/bin"}}, ""};
  RunOutcome outcome = RunWithWatchdog(runner, spec);
  ASSERT_TRUE(outcome.result.ok()) << outcome.result.status().message();
  EXPECT_EQ(outcome.output, "tool-ran arg\n");
}

TEST(SubprocessRunnerTest, RejectsEmptyArgv) {
  SubprocessRunner runner;
  RunOutcome outcome = RunWithWatchdog(runner, {});
  ASSERT_FALSE(outcome.result.ok());
  EXPECT_EQ(outcome.result.status().code(), Status::Code::kInvalidArgument);
}

TEST(SubprocessRunnerTest, CancelStopsTheWholeProcessTree) {
  SubprocessRunner runner;
  std::atomic<bool> cancel{false};
  std::atomic<pid_t> group{0};
  Result<int> result = Status::Internal("not run");
  std::string output;
  std::mutex output_mu;
  Clock::time_point run_returned;
  std::thread worker([&] {
    result = runner.Run(
        {{"/bin/sh", "-c", "echo pid $$; sleep 100 & sleep 100"}, {}, ""},
        [&](std::string_view chunk) {
          std::lock_guard<std::mutex> lock(output_mu);
          output.append(chunk);
          if (size_t at = output.find("pid "); at != std::string::npos && group == 0) {
            group = std::atoi(output.c_str() + at + 4);
          }
        },
        &cancel);
    run_returned = Clock::now();
  });
  // Stops the tree and joins also when an assertion below returns early.
  struct Joiner {
    std::atomic<bool>& cancel;
    std::thread& worker;
    ~Joiner() {
      cancel = true;
      if (worker.joinable()) worker.join();
    }
  } joiner{cancel, worker};

  // Wait (bounded) until both sleeps run in the command's process group. (The shell may
  // have become the second sleep by exec, so it is not counted.)
  auto count_sleeps = [&] {
    int n = 0;
    for (const ProcessInfo& p : LiveProcessesInGroup(group)) n += p.command == "sleep";
    return n;
  };
  Clock::time_point deadline = Clock::now() + seconds(10);
  while ((group == 0 || count_sleeps() < 2) && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_NE(group.load(), 0) << "the command never printed its pid";
  ASSERT_EQ(count_sleeps(), 2) << "expected two sleeps in the command's process group";

  Clock::time_point canceled_at = Clock::now();
  cancel = true;
  worker.join();

  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), Status::Code::kCanceled);
  // SIGTERM suffices for sh and sleep, so this takes far less than the SIGKILL grace.
  EXPECT_LT(run_returned - canceled_at, milliseconds(SubprocessRunner::kTermGraceMillis));

  // The signals were sent before Run returned; allow the kernel a moment to finish them.
  deadline = Clock::now() + seconds(5);
  while (!LiveProcessesInGroup(group).empty() && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_TRUE(LiveProcessesInGroup(group).empty()) << "processes of the canceled command remain";
  EXPECT_EQ(output.find("pid "), 0u) << output;
  ExpectNoChildren();
}

TEST(SubprocessRunnerTest, CancelEscalatesToSigkillWhenSigtermIsIgnored) {
  SubprocessRunner runner;
  std::atomic<bool> cancel{false};
  Result<int> result = Status::Internal("not run");
  std::atomic<bool> ready{false};
  Clock::time_point run_returned;
  std::thread worker([&] {
    result = runner.Run(
        {{"/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done"}, {}, ""},
        [&](std::string_view chunk) {
          if (chunk.find("ready") != std::string_view::npos) ready = true;
        },
        &cancel);
    run_returned = Clock::now();
  });
  Clock::time_point deadline = Clock::now() + seconds(10);
  while (!ready && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(10));
  Clock::time_point canceled_at = Clock::now();
  cancel = true;  // also stops the command if it never got ready
  worker.join();
  ASSERT_TRUE(ready.load()) << "the command never printed 'ready'";
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), Status::Code::kCanceled);
  auto took = run_returned - canceled_at;
  EXPECT_GE(took, milliseconds(SubprocessRunner::kTermGraceMillis - 100));
  EXPECT_LT(took, milliseconds(SubprocessRunner::kTermGraceMillis + 3000));
  ExpectNoChildren();
}

TEST(SubprocessRunnerTest, ProcessesLeftInTheGroupAreStoppedAtExit) {
  RunOutcome outcome = RunShell("sleep 100 >/dev/null 2>&1 & echo $!");
  ASSERT_TRUE(outcome.result.ok()) << outcome.result.status().message();
  pid_t background = std::atoi(outcome.output.c_str());
  ASSERT_GT(background, 0) << outcome.output;
  // Run returns in far less than the 100 s the background sleep would take.
  EXPECT_LT(outcome.elapsed, seconds(5));
  Clock::time_point deadline = Clock::now() + seconds(5);
  bool gone = false;
  while (!gone && Clock::now() < deadline) {
    std::ifstream in("/proc/" + std::to_string(background) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t paren = stat.rfind(')');
    gone = paren == std::string::npos || stat[paren + 2] == 'Z';
    if (!gone) std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_TRUE(gone) << "the background sleep " << background << " still runs";
}

TEST(SubprocessRunnerTest, LongOutputArrivesCompleteInWholeLines) {
  // About 1 MB: the numbers 1..170000, one per line.
  RunOutcome outcome = RunShell("seq 1 170000");
  ASSERT_TRUE(outcome.result.ok()) << outcome.result.status().message();
  std::string expected;
  for (int i = 1; i <= 170000; ++i) expected += std::to_string(i) + "\n";
  ASSERT_GT(expected.size(), 1000000u);
  EXPECT_EQ(outcome.output.size(), expected.size());
  EXPECT_TRUE(outcome.output == expected) << "the output differs from seq's";
  EXPECT_GT(outcome.chunks.size(), 1u);
  for (const std::string& chunk : outcome.chunks) {
    ASSERT_FALSE(chunk.empty());
    ASSERT_EQ(chunk.back(), '\n') << "a chunk ended inside a line";
  }
}

TEST(SubprocessRunnerTest, ChildSeesOnlyStandardDescriptors) {
  // Nothing but stdin, stdout and stderr reaches the child: not the pipe of this call, and
  // not a descriptor this process left inheritable (a socket some library opened without
  // O_CLOEXEC), which would otherwise stay open in a build that outlives the agent.
  const std::set<int> standard = {0, 1, 2};
  int probe = ::open("/dev/null", O_RDONLY);  // inheritable
  ASSERT_GE(probe, 0);
  ASSERT_FALSE(::fcntl(probe, F_GETFD) & FD_CLOEXEC);
  // ls and readlink run as the shell's children and look at the shell's descriptors.
  RunOutcome outcome = RunShell("ls /proc/$$/fd; readlink /proc/$$/fd/0");
  ::close(probe);
  ASSERT_TRUE(outcome.result.ok()) << outcome.result.status().message();
  std::vector<std::string> lines;
  std::istringstream stream(outcome.output);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  ASSERT_GE(lines.size(), 2u) << outcome.output;
  std::string stdin_target = lines.back();
  lines.pop_back();
  std::set<int> seen;
  for (const std::string& line : lines) seen.insert(std::stoi(line));
  EXPECT_EQ(seen, standard) << "child's descriptors:\n" << outcome.output;
  EXPECT_EQ(stdin_target, "/dev/null");
}

TEST(SubprocessRunnerTest, ChildGetsDefaultSigpipeEvenIfTheCallerIgnoresIt) {
  struct sigaction ignore;
  struct sigaction previous;
  std::memset(&ignore, 0, sizeof(ignore));
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGPIPE, &ignore, &previous), 0);
  // With SIGPIPE ignored, yes would see EPIPE and print an error; by default it just dies.
  RunOutcome outcome = RunShell("yes | head -n 1");
  ::sigaction(SIGPIPE, &previous, nullptr);
  ASSERT_TRUE(outcome.result.ok()) << outcome.result.status().message();
  EXPECT_EQ(outcome.output, "y\n");
}

TEST(SubprocessRunnerTest, ParallelRunsKeepTheirOwnOutput) {
  SubprocessRunner runner;
  constexpr int kThreads = 6;
  std::vector<RunOutcome> outcomes(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      CommandSpec spec{{"/bin/sh", "-c", "for n in 1 2 3; do echo \"$ID\"; sleep 0.05; done"},
                       {{"ID", "job" + std::to_string(i)}},
                       ""};
      outcomes[i] = RunWithWatchdog(runner, spec);
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_TRUE(outcomes[i].result.ok()) << outcomes[i].result.status().message();
    EXPECT_EQ(*outcomes[i].result, 0);
    std::string id = "job" + std::to_string(i) + "\n";
    EXPECT_EQ(outcomes[i].output, id + id + id);
    // A pipe leaked into another thread's child would hold this one open past the exit.
    EXPECT_LT(outcomes[i].elapsed, seconds(2));
  }
  ExpectNoChildren();
}

}  // namespace
}  // namespace manifold
