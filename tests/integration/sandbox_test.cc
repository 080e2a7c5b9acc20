// The buildah agent's RUN-step sandbox (issue 17) on a real farm: hostile Dockerfiles whose
// probes must all fail. Each probe is negated in the step (`! PROBE`), so a build that
// succeeds proves every probe failed; a probe that reached its goal fails the build. Run
// with MANIFOLD_ISOLATION=chroot, every test but the key/config one fails, which shows the
// probes work; buildah's chroot already keeps the step from other processes' /proc/PID/root
// and environ (it drops CAP_SYS_PTRACE), and its root directory is the image's.
// After each, a normal build on the same agent succeeds. Egress is shown against a server
// in a network namespace the test makes (10.199.0.0/24, routed from the host), which also
// serves 169.254.169.254 and an address in a --deny-network range, both unreachable from
// a step. Traffic goes only to this host's loopback and addresses, and into that namespace.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "tests/support/farm.h"
#include "tests/support/ports.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace manifold::test {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

const char kAgent[] = "amd64-1";
const char kTestHost[] = "10.199.0.1";    // the host's end of the test namespace's veth
const char kTestServer[] = "10.199.0.2";  // the namespace's server, reachable
const char kDeniedServer[] = "10.199.0.66";
const char kDeniedNetwork[] = "10.199.0.64/26";
const char kLinkLocalServer[] = "169.254.169.254";

// A short host command (ip, curl, iptables-save).
CommandResult Shell(const std::vector<std::string>& argv) { return RunCommand(argv, seconds(30)); }

// The port of an "ADDRESS:PORT" after `marker` in text ("" if absent).
std::string PortAfter(const std::string& text, const std::string& marker) {
  size_t at = text.rfind(marker);
  if (at == std::string::npos) return "";
  std::smatch match;
  std::string rest = text.substr(at + marker.size(), 64);
  return std::regex_search(rest, match, std::regex(":(\\d+)")) ? match[1].str() : "";
}

// Every IPv4 address of this host's interfaces except loopback's.
std::string HostAddresses() {
  std::string addresses;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "";
  for (ifaddrs* it = list; it; it = it->ifa_next) {
    if (!it->ifa_addr || it->ifa_addr->sa_family != AF_INET) continue;
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(it->ifa_addr)->sin_addr, text, sizeof(text));
    if (std::string(text).rfind("127.", 0) != 0)
      addresses += std::string(addresses.empty() ? "" : " ") + text;
  }
  freeifaddrs(list);
  return addresses;
}

class SandboxTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    scratch_ = new TempDir("manifold-sandbox");
    netns_ = "mfdtest-" + std::to_string(getpid());
    veth_ = "mfdt" + std::to_string(getpid());
    setup_ = MakeTestNamespace();
    if (!setup_.empty()) return;
    farm_ = new Farm(FarmOptions{{std::string(kAgent) + ":linux/amd64"},
                                 {{"MANIFOLD_DENY_NETWORK", kDeniedNetwork}}});
    Status up = farm_->Up();
    if (!up.ok()) setup_ = "farm: " + up.message();
  }

  static void TearDownTestSuite() {
    delete farm_;
    farm_ = nullptr;
    delete test_server_;
    test_server_ = nullptr;
    delete host_server_;
    host_server_ = nullptr;
    Shell({"ip", "route", "delete", std::string(kLinkLocalServer) + "/32"});
    Shell({"ip", "link", "delete", veth_ + "h"});
    Shell({"ip", "netns", "delete", netns_});
    delete scratch_;
    scratch_ = nullptr;
  }

  // The namespace with its servers, and a server on every address of the host (0.0.0.0)
  // that a step must not reach; "" when all is up, else what failed.
  static std::string MakeTestNamespace() {
    const std::string www = scratch_->path() + "/www";
    fs::create_directories(www);
    std::ofstream(www + "/ok") << "served-from-the-test-namespace\n";
    const std::string host = veth_ + "h", inside = veth_ + "n";
    const std::vector<std::vector<std::string>> steps = {
        {"ip", "netns", "add", netns_},
        {"ip", "link", "add", host, "type", "veth", "peer", "name", inside},
        {"ip", "link", "set", inside, "netns", netns_},
        {"ip", "addr", "add", std::string(kTestHost) + "/24", "dev", host},
        {"ip", "link", "set", host, "up"},
        {"ip", "-n", netns_, "addr", "add", std::string(kTestServer) + "/24", "dev", inside},
        {"ip", "-n", netns_, "addr", "add", std::string(kDeniedServer) + "/24", "dev", inside},
        {"ip", "-n", netns_, "addr", "add", std::string(kLinkLocalServer) + "/32", "dev", inside},
        {"ip", "-n", netns_, "link", "set", "lo", "up"},
        {"ip", "-n", netns_, "link", "set", inside, "up"},
        {"ip", "route", "add", std::string(kLinkLocalServer) + "/32", "via", kTestServer},
    };
    for (const auto& step : steps) {
      CommandResult result = Shell(step);
      if (result.exit_code != 0)
        return step[0] + " " + step[1] + " " + step[2] + ": " + result.output;
    }
    test_port_ = std::to_string(FreeTcpPort());
    test_server_ = new Subprocess();
    Status started = test_server_->Start(
        {"ip", "netns", "exec", netns_, "busybox", "httpd", "-f", "-p", test_port_, "-h", www});
    if (!started.ok()) return started.message();
    host_port_ = std::to_string(FreeTcpPort());
    host_server_ = new Subprocess();
    started =
        host_server_->Start({"busybox", "httpd", "-f", "-p", "0.0.0.0:" + host_port_, "-h", www});
    if (!started.ok()) return started.message();
    // Every server answers the host itself, so a step that cannot reach one was stopped.
    std::vector<std::string> urls = {"http://127.0.0.1:" + host_port_ + "/ok"};
    for (const char* address : {kTestServer, kDeniedServer, kLinkLocalServer}) {
      urls.push_back(std::string("http://") + address + ":" + test_port_ + "/ok");
    }
    for (const std::string& url : urls) {
      CommandResult got;
      for (int i = 0; i < 50 && got.exit_code != 0; ++i) {
        if (i) usleep(100000);
        got = Shell({"curl", "-sf", "--max-time", "2", url});
      }
      if (got.exit_code != 0) return "the host cannot reach " + url + ": " + got.output;
    }
    return "";
  }

  void SetUp() override { ASSERT_TRUE(setup_.empty()) << setup_; }

  void TearDown() override {
    if (HasFailure() && farm_) {
      std::cerr << "---- " << kAgent << " log ----\n" << farm_->LogTail(kAgent) << "\n";
    }
  }

  // Builds `dockerfile` on the agent with these build args; the CLI's result.
  CommandResult Build(const std::string& dockerfile,
                      const std::map<std::string, std::string>& args = {}) {
    const std::string context = scratch_->path() + "/context-" + std::to_string(++builds_);
    fs::create_directories(context);
    std::ofstream(context + "/Dockerfile") << dockerfile;
    std::vector<std::string> argv = {"build",
                                     "--platform",
                                     "linux/amd64",
                                     "--progress",
                                     "plain",
                                     "-t",
                                     farm_->registry() + "/sandbox:latest"};
    for (const auto& [key, value] : args)
      argv.insert(argv.end(), {"--build-arg", key + "=" + value});
    argv.push_back(context);
    return farm_->Manifold(argv, seconds(180));
  }

  // After a hostile build, the agent still builds (and runs RUN steps) as usual.
  void ExpectNormalBuild() {
    CommandResult build = Build("FROM busybox\nRUN echo normal-step-ran > /normal\n");
    EXPECT_EQ(build.exit_code, 0) << build.output;
  }

  std::string AgentLog() const { return farm_->Log(kAgent); }

  static Farm* farm_;
  static TempDir* scratch_;
  static std::string setup_, netns_, veth_, test_port_, host_port_;
  static Subprocess* test_server_;
  static Subprocess* host_server_;
  static int builds_;
};

Farm* SandboxTest::farm_ = nullptr;
TempDir* SandboxTest::scratch_ = nullptr;
std::string SandboxTest::setup_, SandboxTest::netns_, SandboxTest::veth_, SandboxTest::test_port_,
    SandboxTest::host_port_;
Subprocess* SandboxTest::test_server_ = nullptr;
Subprocess* SandboxTest::host_server_ = nullptr;
int SandboxTest::builds_ = 0;

TEST_F(SandboxTest, StepSeesNoHostProcess) {
  CommandResult build = Build(
      "FROM busybox\n"
      "RUN ls -d /proc/[0-9]* | wc -l; "
      "! grep -l -s -e 'manifold-agen[t]' -e 'manifold-coordinato[r]' -e 'postgre[s]' -e "
      "'builda[h]' "
      "/proc/[0-9]*/cmdline && test $(ls -d /proc/[0-9]* | wc -l) -lt 8\n");
  EXPECT_EQ(build.exit_code, 0) << build.output;
  ExpectNormalBuild();
}

TEST_F(SandboxTest, HostServicesAreUnreachableOnLoopbackAndEveryHostAddress) {
  const std::string api = PortAfter(farm_->server_url(), "http");
  const std::string database = PortAfter(farm_->database_url(), "@");
  const std::string metrics = PortAfter(AgentLog(), "metrics on ");
  const std::string registry = farm_->registry().substr(farm_->registry().rfind(':') + 1);
  ASSERT_FALSE(api.empty() || database.empty() || metrics.empty() || registry.empty())
      << farm_->server_url() << " " << farm_->database_url() << " " << registry;
  // PORTS on 127.0.0.1 (the farm's services and the test's server on every address);
  // HOST_PORT on every other address of the host, and on the step's gateway.
  CommandResult build = Build(
      "FROM busybox\n"
      "ARG PORTS\nARG HOST_ADDRESSES\nARG HOST_PORT\n"
      "RUN gateway=$(ip route | awk '/^default/ {print $3}'); echo \"gateway $gateway\"; "
      "case \"$gateway\" in 10.213.*) ;; *) exit 1 ;; esac && for port in $PORTS; do ! nc -w 3 "
      "127.0.0.1 $port </dev/null "
      "|| exit 1; done && for address in $gateway $HOST_ADDRESSES; do "
      "! nc -w 3 $address $HOST_PORT </dev/null || exit 1; done\n",
      {{"PORTS", api + " " + database + " " + metrics + " " + registry + " " + host_port_},
       {"HOST_ADDRESSES", HostAddresses()},
       {"HOST_PORT", host_port_}});
  EXPECT_EQ(build.exit_code, 0) << build.output;
  ExpectNormalBuild();
}

TEST_F(SandboxTest, AgentKeyConfigAndWorkFilesCannotBeRead) {
  // A docker config.json with a credential next to the agent's work dir, where an
  // operator would keep one, and the agent's CURVE key from the farm's keys dir.
  const std::string farm_dir = farm_->dir() + "/farm";
  const std::string agent_dir = farm_dir + "/agents/" + kAgent;
  fs::create_directories(agent_dir + "/.docker");
  const std::string config = agent_dir + "/.docker/config.json";
  std::ofstream(config) << R"({"auths":{"registry.example":{"auth":"c2VjcmV0"}}})";
  const std::string key = farm_dir + "/keys/" + kAgent + ".key";
  // Their digests, so that a copy anywhere in the step's filesystem is found by content.
  CommandResult sums = Shell({"sha256sum", key, config});
  ASSERT_EQ(sums.exit_code, 0) << sums.output;
  std::string hashes;
  std::istringstream sum_lines(sums.output);
  for (std::string hash, file; sum_lines >> hash >> file;) hashes += hash + " ";
  const std::string paths = key + " " + agent_dir + "/.docker/config.json " + agent_dir + "/work " +
                            farm_dir + "/keys " + farm_dir + "/agents";
  CommandResult build = Build(
      "FROM busybox\n"
      "ARG PATHS\nARG HASHES\n"
      "WORKDIR /a/b/c\n"
      "RUN for path in $PATHS; do for p in $path /proc/1/root$path /proc/self/root$path "
      "../../../../../../..$path /proc/[0-9]*/root$path /proc/[0-9]*/cwd/$path; do "
      "! ls -d $p 2>/dev/null || exit 1; done; done && "
      "! grep -l -s -e CONTAINERS_STORAGE_CONF -e MANIFOLD_ /proc/[0-9]*/environ && "
      "mkdir -p /tmp && find / -xdev -type f -size -4k -exec sha256sum {} + > /tmp/sums && "
      "for hash in $HASHES; do ! grep $hash /tmp/sums || exit 1; done\n",
      {{"PATHS", paths}, {"HASHES", hashes}});
  EXPECT_EQ(build.exit_code, 0) << build.output;
  ExpectNormalBuild();
}

TEST_F(SandboxTest, RootInTheStepCannotEscape) {
  const pid_t agent = farm_->Pid(kAgent);
  ASSERT_GT(agent, 0);
  CommandResult build = Build(
      "FROM busybox\n"
      "ARG AGENT_PID\n"
      "RUN mkdir -p /mnt/x && ! kill -0 $AGENT_PID && "
      "! mount -t tmpfs none /mnt/x && ! mount -t proc proc /mnt/x && ! mount --bind / /mnt/x && "
      "! unshare -m true && ! nsenter -t 1 -m -n true && "
      "! (mknod /tmp/mem c 1 1 && head -c 1 /tmp/mem >/dev/null) && "
      "! test -s /proc/kcore && "
      "! sh -c 'cat /proc/sys/kernel/sysrq > /proc/sys/kernel/sysrq' && "
      "! ls /proc/1/root/run/manifold-sandbox\n",
      {{"AGENT_PID", std::to_string(agent)}});
  EXPECT_EQ(build.exit_code, 0) << build.output;
  ExpectNormalBuild();
}

TEST_F(SandboxTest, EgressWorksButNotToLinkLocalOrDeniedNetworks) {
  CommandResult build = Build(
      "FROM busybox\n"
      "ARG PORT\n"
      "RUN timeout 10 wget -q -O - http://" +
          std::string(kTestServer) +
          ":$PORT/ok | grep served-from-the-test-namespace && "
          "! timeout 5 wget -q -O - http://" +
          kLinkLocalServer +
          ":$PORT/ok && "
          "! timeout 5 wget -q -O - http://" +
          kDeniedServer + ":$PORT/ok\n",
      {{"PORT", test_port_}});
  EXPECT_EQ(build.exit_code, 0) << build.output;
  EXPECT_NE(build.output.find("served-from-the-test-namespace"), std::string::npos) << build.output;
  ExpectNormalBuild();
}

// SIGKILL leaves the agent's network and rules behind; the restarted agent resets them:
// the same rules, once, and builds as before.
TEST_F(SandboxTest, KilledAgentsRulesAreResetNotDoubledAtRestart) {
  auto rules = [] {
    CommandResult v4 = Shell({"iptables-save"}), v6 = Shell({"ip6tables-save"});
    std::string lines;
    std::istringstream all(v4.output + v6.output);
    for (std::string line; std::getline(all, line);) {
      if (line.find("MANIFOLD-SBX-") != std::string::npos && line[0] != '#') lines += line + "\n";
    }
    return lines;
  };
  const std::string before = rules();
  ASSERT_NE(before.find("-j MANIFOLD-SBX-"), std::string::npos) << before;
  ASSERT_TRUE(farm_->Kill(kAgent).ok());
  Status started = farm_->Start(kAgent);
  ASSERT_TRUE(started.ok()) << started.message();
  EXPECT_EQ(rules(), before);
  ExpectNormalBuild();
}

}  // namespace
}  // namespace manifold::test
