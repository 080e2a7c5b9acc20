// context_stream_bench: peak memory of each process while a large build context travels
// end to end, and how fast it travels (docs/BENCHMARKS.md, "Streamed contexts").
//
// Makes a context of --size-mib MiB of random (incompressible) bytes in --files files in
// a temp dir, brings up a farm on 127.0.0.1 with one synthetic-backend agent (the
// backend ignores the context, so the figures are the context's path alone: the CLI
// packs, hashes and uploads it, the coordinator stores and serves it, the agent
// downloads, hashes and unpacks it), and runs one real `manifold build` of it. Prints
// the peak RSS of the CLI (its rusage), of the coordinator and of the agent during the
// build (VmHWM, reset through /proc/PID/clear_refs once the farm is up), the time to
// pack, upload and download-and-unpack, and which of those is the slowest. Single-
// threaded but for one sampler thread.
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/farm.h"
#include "tests/support/temp_dir.h"

extern char** environ;

namespace manifold {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

double Mib(uint64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

// A "Name:   123 kB" line of /proc/PID/status, in bytes; 0 if absent.
uint64_t StatusBytes(pid_t pid, const std::string& name) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + ":", 0) == 0)
      return std::strtoull(line.c_str() + name.size() + 1, nullptr, 10) << 10;
  }
  return 0;
}

// /proc/PID/io's wchar: bytes the process wrote through write(2) and friends (files, not
// sockets), which for the agent is the context as it lands on disk.
uint64_t WrittenBytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/io");
  std::string key;
  uint64_t value = 0;
  while (in >> key >> value) {
    if (key == "wchar:") return value;
  }
  return 0;
}

// Resets VmHWM to the current RSS (proc(5), clear_refs "5").
bool ResetPeak(pid_t pid) {
  std::ofstream out("/proc/" + std::to_string(pid) + "/clear_refs");
  out << "5\n";
  return static_cast<bool>(out.flush());
}

// Writes `files` files of random bytes, `total` bytes in all, and a Dockerfile.
bool MakeContext(const std::string& dir, uint64_t total, int files) {
  std::ofstream(dir + "/Dockerfile") << "FROM scratch\nCOPY . /\n";
  std::mt19937_64 random(1);
  std::vector<uint64_t> buffer((1 << 20) / sizeof(uint64_t));
  for (int i = 0; i < files; ++i) {
    std::ofstream out(dir + "/data-" + std::to_string(i) + ".bin", std::ios::binary);
    uint64_t left = total / files + (i == 0 ? total % files : 0);
    while (left > 0) {
      for (uint64_t& word : buffer) word = random();
      size_t n = static_cast<size_t>(std::min<uint64_t>(left, buffer.size() * sizeof(uint64_t)));
      out.write(reinterpret_cast<const char*>(buffer.data()), static_cast<std::streamsize>(n));
      left -= n;
    }
    if (!out) return false;
  }
  return true;
}

struct CliRun {
  int exit_status = -1;
  uint64_t peak_rss = 0;
  // When each line of its output arrived, from the start.
  std::vector<std::pair<double, std::string>> lines;
};

// Runs the CLI with stdout (and stderr) into a pipe, timing each line as it arrives.
CliRun RunCli(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  CliRun run;
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return run;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const std::string& var : env) envp.push_back(const_cast<char*>(var.c_str()));
  envp.push_back(nullptr);
  const Clock::time_point start = Clock::now();
  pid_t pid = 0;
  int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (spawned != 0) {
    close(pipe_fds[0]);
    return run;
  }
  std::string pending;
  char buffer[4096];
  ssize_t n;
  while ((n = read(pipe_fds[0], buffer, sizeof buffer)) > 0) {
    pending.append(buffer, static_cast<size_t>(n));
    for (size_t end; (end = pending.find('\n')) != std::string::npos; pending.erase(0, end + 1)) {
      run.lines.emplace_back(Seconds(start, Clock::now()), pending.substr(0, end));
    }
  }
  close(pipe_fds[0]);
  int status = 0;
  rusage usage{};
  if (wait4(pid, &status, 0, &usage) == pid && WIFEXITED(status)) {
    run.exit_status = WEXITSTATUS(status);
  }
  run.peak_rss = static_cast<uint64_t>(usage.ru_maxrss) << 10;
  return run;
}

// When the first line containing `text` arrived, or -1.
double LineTime(const CliRun& run, const std::string& text) {
  for (const auto& [when, line] : run.lines) {
    if (line.find(text) != std::string::npos) return when;
  }
  return -1;
}

int Main(int argc, char** argv) {
  uint64_t size_mib = 1024;
  int files = 4;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--size-mib") == 0) size_mib = std::strtoull(argv[i + 1], nullptr, 10);
    if (std::strcmp(argv[i], "--files") == 0) files = std::atoi(argv[i + 1]);
  }
  const uint64_t size = size_mib << 20;
  test::TempDir dir("context-stream-bench");
  const std::string context = dir.path() + "/context";
  const std::string spool = dir.path() + "/tmp";
  std::filesystem::create_directories(context);
  std::filesystem::create_directories(spool);
  std::printf("context: %llu MiB of random bytes in %d files\n",
              static_cast<unsigned long long>(size_mib), files);
  if (!MakeContext(context, size, files)) {
    std::fprintf(stderr, "cannot write the context in %s\n", context.c_str());
    return 1;
  }

  const std::string agent = "amd64-1";
  test::Farm farm(
      test::FarmOptions{{agent + ":linux/amd64"},
                        {{"MANIFOLD_FARM_BACKEND", "synthetic"},
                         {"MANIFOLD_MAX_CONTEXT_BYTES", std::to_string(size + (size >> 2))}}});
  if (Status up = farm.Up(); !up.ok()) {
    std::fprintf(stderr, "farm: %s\n", up.message().c_str());
    return 1;
  }
  const pid_t coordinator = farm.Pid("coordinator");
  const pid_t agent_pid = farm.Pid(agent);
  const uint64_t coordinator_rss = StatusBytes(coordinator, "VmRSS");
  const uint64_t agent_rss = StatusBytes(agent_pid, "VmRSS");
  if (!ResetPeak(coordinator) || !ResetPeak(agent_pid)) {
    std::fprintf(stderr, "cannot reset the peak RSS through /proc/PID/clear_refs\n");
    return 1;
  }

  // The agent's file writes over time: the context landing in its job directory.
  std::atomic<bool> done{false};
  std::vector<std::pair<double, uint64_t>> agent_writes;
  const Clock::time_point start = Clock::now();
  std::thread sampler([&] {
    while (!done) {
      agent_writes.emplace_back(Seconds(start, Clock::now()), WrittenBytes(agent_pid));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  CliRun cli =
      RunCli({test::BinaryDir() + "/cli/manifold", "build", "--progress", "plain", "--platform",
              "linux/amd64", "-t", farm.registry() + "/bench:stream", context},
             {"MANIFOLD_SERVER=" + farm.server_url(), "TMPDIR=" + spool, "PATH=/usr/bin:/bin"});
  done = true;
  sampler.join();
  const uint64_t coordinator_peak = StatusBytes(coordinator, "VmHWM");
  const uint64_t agent_peak = StatusBytes(agent_pid, "VmHWM");
  if (cli.exit_status != 0) {
    std::fprintf(stderr, "manifold build exited %d:\n", cli.exit_status);
    for (const auto& [when, line] : cli.lines) std::fprintf(stderr, "  %s\n", line.c_str());
    std::fprintf(stderr, "coordinator:\n%s\n", farm.LogTail("coordinator").c_str());
    std::fprintf(stderr, "agent:\n%s\n", farm.LogTail(agent).c_str());
    return 1;
  }

  // Pack: start to "context: N bytes" (printed after the pack and the HEAD); upload: from
  // there to "context uploaded"; download: the agent's writes from the first to the last
  // MiB of the context (its file writes besides are a few KB of log and image).
  const double packed_at = LineTime(cli, "context: ");
  const double uploaded_at = LineTime(cli, "context uploaded");
  const uint64_t base = agent_writes.empty() ? 0 : agent_writes.front().second;
  double download_from = -1, download_to = -1;
  for (const auto& [when, written] : agent_writes) {
    if (download_from < 0 && written - base >= (1 << 20)) download_from = when;
    if (download_to < 0 && written - base >= size) download_to = when;
  }
  const double pack_s = packed_at;
  const double upload_s = uploaded_at - packed_at;
  const double download_s = download_to - download_from;
  std::printf("CLI          peak RSS %7.1f MiB\n", Mib(cli.peak_rss));
  std::printf("coordinator  peak RSS %7.1f MiB during the build (%.1f MiB before)\n",
              Mib(coordinator_peak), Mib(coordinator_rss));
  std::printf("agent        peak RSS %7.1f MiB during the build (%.1f MiB before)\n",
              Mib(agent_peak), Mib(agent_rss));
  std::printf("pack+hash    %6.2f s  %7.1f MiB/s (to the spool file)\n", pack_s, size_mib / pack_s);
  std::printf("upload       %6.2f s  %7.1f MiB/s (CLI to coordinator)\n", upload_s,
              size_mib / upload_s);
  if (download_from >= 0 && download_to > download_from) {
    std::printf("download     %6.2f s  %7.1f MiB/s (coordinator to agent, unpacked as it comes)\n",
                download_s, size_mib / download_s);
  } else {
    std::printf("download     not seen in the agent's writes\n");
  }
  std::printf("build total  %6.2f s\n", cli.lines.empty() ? 0.0 : cli.lines.back().first);
  const char* slowest = pack_s >= upload_s && pack_s >= download_s ? "pack+hash"
                        : upload_s >= download_s                   ? "upload"
                                                                   : "download";
  std::printf("slowest      %s\n", slowest);
  return 0;
}

}  // namespace
}  // namespace manifold

int main(int argc, char** argv) { return manifold::Main(argc, argv); }
