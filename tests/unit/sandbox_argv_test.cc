// How the buildah agent's sandbox settings become buildah arguments and firewall rules:
// BuildRequest.network mapped to --network, the sandbox network's CNI flags, the user
// namespace maps, and the rules of one sandbox network slot.
#include <gtest/gtest.h>

#include <algorithm>

#include "agent/buildah_builder.h"
#include "agent/sandbox_network.h"

namespace manifold {
namespace {

// Never runs anything: BudArgv only builds a command line.
class NoRunner : public CommandRunner {
 public:
  Result<int> Run(const CommandSpec&, const std::function<void(std::string_view)>&,
                  const std::atomic<bool>*) override {
    return Status::Internal("not run in this test");
  }
};

std::string Joined(const std::vector<std::string>& argv) {
  std::string text;
  for (const std::string& arg : argv) text += (text.empty() ? "" : " ") + arg;
  return text;
}

BuildRequest Request(const std::string& network) {
  BuildRequest request;
  request.platform = Platform{"linux", "amd64", ""};
  request.context_dir = "/ctx";
  request.dockerfile_path = "/ctx/Dockerfile";
  request.image_name = "job-1";
  request.network = network;
  return request;
}

TEST(SandboxArgvTest, DefaultNetworkIsTheAgentsSandboxNoneAndHostArePassedOn) {
  NoRunner runner;
  BuildahBuilder builder(runner, "buildah", true,
                         BuildahSandbox{"oci", "/run/sbx/3/cni", "manifold-sbx3", ""});
  const std::string sandboxed = Joined(builder.BudArgv(Request("")));
  EXPECT_NE(sandboxed.find("buildah bud --isolation oci "), std::string::npos) << sandboxed;
  EXPECT_NE(sandboxed.find("--cni-config-dir /run/sbx/3/cni --network manifold-sbx3"),
            std::string::npos)
      << sandboxed;
  EXPECT_EQ(sandboxed.find("--userns"), std::string::npos) << sandboxed;
  for (const char* network : {"none", "host"}) {
    const std::string argv = Joined(builder.BudArgv(Request(network)));
    EXPECT_NE(argv.find(std::string("--network ") + network), std::string::npos) << argv;
    EXPECT_EQ(argv.find("--cni-config-dir"), std::string::npos) << argv;
  }
}

TEST(SandboxArgvTest, ChrootAndUserNamespaceAreAgentSettings) {
  NoRunner runner;
  BuildahBuilder chroot(runner, "buildah", true, BuildahSandbox{"chroot", "", "", ""});
  EXPECT_NE(Joined(chroot.BudArgv(Request(""))).find("--isolation chroot"), std::string::npos);
  BuildahBuilder mapped(runner, "buildah", true, BuildahSandbox{"oci", "", "", "100000:65536"});
  const std::string argv = Joined(mapped.BudArgv(Request("")));
  EXPECT_NE(argv.find("--userns-uid-map 0:100000:65536 --userns-gid-map 0:100000:65536"),
            std::string::npos)
      << argv;
}

TEST(SandboxArgvTest, SlotRulesRejectTheHostLinkLocalAndDeniedNetworksThenAllowEgress) {
  const std::string rules =
      SandboxNetwork::Ipv4Rules(5, "mfd-sbx5", "10.213.5.0/24", {"10.0.0.0/8", "192.168.0.0/16"});
  const std::vector<std::string> expected = {
      ":MANIFOLD-SBX-5-IN - [0:0]",
      "-A MANIFOLD-SBX-5-IN -j REJECT",
      "-A MANIFOLD-SBX-5-FWD -i mfd-sbx5 -o mfd-sbx5 -j DROP",
      "-A MANIFOLD-SBX-5-FWD -i mfd-sbx5 -d 169.254.0.0/16 -j REJECT",
      "-A MANIFOLD-SBX-5-FWD -i mfd-sbx5 -d 10.0.0.0/8 -j REJECT",
      "-A MANIFOLD-SBX-5-FWD -i mfd-sbx5 -d 192.168.0.0/16 -j REJECT",
      "-A MANIFOLD-SBX-5-FWD -i mfd-sbx5 -j ACCEPT",
      "-A MANIFOLD-SBX-5-FWD -o mfd-sbx5 -j DROP",
      "-A MANIFOLD-SBX-5-NAT -s 10.213.5.0/24 ! -d 10.213.5.0/24 -j MASQUERADE"};
  size_t at = 0;
  for (const std::string& line : expected) {
    size_t found = rules.find(line, at);
    ASSERT_NE(found, std::string::npos) << "missing or out of order: " << line << "\n" << rules;
    at = found;
  }
}

TEST(SandboxArgvTest, DenyNetworksMustBeIpv4Cidrs) {
  EXPECT_TRUE(CheckIpv4Cidr("10.0.0.0/8").ok());
  EXPECT_TRUE(CheckIpv4Cidr("192.168.1.7/32").ok());
  for (const char* bad : {"10.0.0.0", "10.0.0.0/33", "10.0.0/8", "fd00::/8", "10.0.0.0/x", ""}) {
    Status status = CheckIpv4Cidr(bad);
    EXPECT_FALSE(status.ok()) << bad;
    EXPECT_NE(status.message().find("IPv4 CIDR"), std::string::npos) << status.message();
  }
}

}  // namespace
}  // namespace manifold
