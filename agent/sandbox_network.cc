#include "agent/sandbox_network.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace manifold {
namespace {

namespace fs = std::filesystem;

std::string Chain(int slot, const char* suffix) {
  return "MANIFOLD-SBX-" + std::to_string(slot) + "-" + suffix;
}

Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Status::FailedPrecondition("cannot write " + path);
  return Status::Ok();
}

// The CNI network of one slot: a bridge that is the steps' gateway, addresses from
// host-local. No ipMasq: the plugin would add one nat chain per container, which a
// killed agent leaves behind; the slot's own MASQUERADE rule does it once.
std::string CniConfig(const std::string& name, const std::string& bridge, const std::string& subnet,
                      const std::string& gateway, const std::string& ipam_dir) {
  nlohmann::json ipam = {{"type", "host-local"},
                         {"ranges", {{{{"subnet", subnet}, {"gateway", gateway}}}}},
                         {"routes", {{{"dst", "0.0.0.0/0"}}}},
                         {"dataDir", ipam_dir}};
  nlohmann::json bridge_plugin = {{"type", "bridge"}, {"bridge", bridge},     {"isGateway", true},
                                  {"ipMasq", false},  {"hairpinMode", false}, {"ipam", ipam}};
  nlohmann::json config = {{"cniVersion", "1.0.0"}, {"name", name}, {"plugins", {bridge_plugin}}};
  return config.dump(2) + "\n";
}

std::string Ipv6Rules(int slot) {
  const std::string chain = Chain(slot, "V6");
  return "*filter\n:" + chain + " - [0:0]\n-A " + chain + " -j REJECT\nCOMMIT\n";
}

}  // namespace

Status CheckIpv4Cidr(const std::string& cidr) {
  auto slash = cidr.find('/');
  in_addr address{};
  bool ok = slash != std::string::npos &&
            inet_pton(AF_INET, cidr.substr(0, slash).c_str(), &address) == 1;
  if (ok) {
    const std::string length = cidr.substr(slash + 1);
    ok = !length.empty() && length.size() <= 2 &&
         length.find_first_not_of("0123456789") == std::string::npos && std::stoi(length) <= 32;
  }
  if (!ok) return Status::InvalidArgument("'" + cidr + "' is not an IPv4 CIDR such as 10.0.0.0/8");
  return Status::Ok();
}

std::string SandboxNetwork::Ipv4Rules(int slot, const std::string& bridge,
                                      const std::string& subnet,
                                      const std::vector<std::string>& deny_networks) {
  const std::string in = Chain(slot, "IN"), fwd = Chain(slot, "FWD"), nat = Chain(slot, "NAT");
  const std::string reject = " -j REJECT --reject-with icmp-admin-prohibited\n";
  std::ostringstream rules;
  rules << "*filter\n:" << in << " - [0:0]\n:" << fwd << " - [0:0]\n";
  // Every address of the host, whichever interface holds it.
  rules << "-A " << in << reject;
  // Between two steps on the bridge (seen here only where br_netfilter is loaded).
  rules << "-A " << fwd << " -i " << bridge << " -o " << bridge << " -j DROP\n";
  rules << "-A " << fwd << " -i " << bridge << " -d 169.254.0.0/16" << reject;
  for (const std::string& cidr : deny_networks) {
    rules << "-A " << fwd << " -i " << bridge << " -d " << cidr << reject;
  }
  rules << "-A " << fwd << " -i " << bridge << " -j ACCEPT\n";
  rules << "-A " << fwd << " -o " << bridge
        << " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n";
  rules << "-A " << fwd << " -o " << bridge << " -j DROP\n";
  rules << "COMMIT\n*nat\n:" << nat << " - [0:0]\n";
  rules << "-A " << nat << " -s " << subnet << " ! -d " << subnet << " -j MASQUERADE\n";
  rules << "COMMIT\n";
  return rules.str();
}

Result<std::unique_ptr<SandboxNetwork>> SandboxNetwork::Open(const SandboxNetworkOptions& options,
                                                             CommandRunner& runner) {
  auto slash = options.range.find('/');
  if (Status s = CheckIpv4Cidr(options.range); !s.ok() || options.range.substr(slash) != "/16") {
    return Status::InvalidArgument(
        "the sandbox network range must be an IPv4 /16 such as "
        "10.213.0.0/16, got '" +
        options.range + "'");
  }
  for (const std::string& cidr : options.deny_networks) {
    if (Status s = CheckIpv4Cidr(cidr); !s.ok())
      return Status::InvalidArgument("--deny-network: " + s.message());
  }
  std::error_code ec;
  fs::create_directories(options.state_dir, ec);
  if (ec) {
    return Status::FailedPrecondition("cannot create the sandbox state dir " + options.state_dir +
                                      " (" + ec.message() + "); the agent must run as root");
  }
  for (int slot = 0; slot < kSlots; ++slot) {
    const std::string lock_path = options.state_dir + "/" + std::to_string(slot) + ".lock";
    int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      return Status::FailedPrecondition("cannot open " + lock_path +
                                        "; the agent must run as root");
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      continue;
    }
    std::unique_ptr<SandboxNetwork> network(new SandboxNetwork(options, runner, slot, fd));
    if (Status installed = network->Install(); !installed.ok()) return installed;
    return network;
  }
  return Status::FailedPrecondition("all " + std::to_string(kSlots) +
                                    " sandbox network slots under " + options.state_dir +
                                    " are taken by running agents; stop one, or run this agent "
                                    "with --isolation chroot (unsafe for untrusted Dockerfiles)");
}

SandboxNetwork::SandboxNetwork(const SandboxNetworkOptions& options, CommandRunner& runner,
                               int slot, int lock_fd)
    : options_(options), runner_(runner), slot_(slot), lock_fd_(lock_fd) {
  const std::string prefix =
      options_.range.substr(0, options_.range.find('.', options_.range.find('.') + 1));
  dir_ = options_.state_dir + "/" + std::to_string(slot);
  cni_config_dir_ = dir_ + "/cni";
  name_ = "manifold-sbx" + std::to_string(slot);
  bridge_ = "mfd-sbx" + std::to_string(slot);
  subnet_ = prefix + "." + std::to_string(slot) + ".0/24";
  gateway_ = prefix + "." + std::to_string(slot) + ".1";
}

SandboxNetwork::~SandboxNetwork() { Close(); }

Status SandboxNetwork::Run(const std::vector<std::string>& argv, std::string* output) const {
  std::string text;
  Result<int> exit = runner_.Run(
      CommandSpec{argv, {}, ""}, [&](std::string_view chunk) { text.append(chunk); }, nullptr);
  if (output) *output = text;
  if (!exit.ok()) return exit.status();
  if (*exit != 0) {
    return Status::FailedPrecondition("'" + argv[0] + " " + argv[1] + "' exited with " +
                                      std::to_string(*exit) + ": " + text);
  }
  return Status::Ok();
}

std::vector<SandboxNetwork::Jump> SandboxNetwork::Jumps() const {
  const std::string& ip4 = options_.iptables;
  const std::string& ip6 = options_.ip6tables;
  return {
      {ip4, "filter", {"INPUT", "-i", bridge_, "-j", Chain(slot_, "IN")}},
      {ip4, "filter", {"FORWARD", "-i", bridge_, "-j", Chain(slot_, "FWD")}},
      {ip4, "filter", {"FORWARD", "-o", bridge_, "-j", Chain(slot_, "FWD")}},
      {ip4, "nat", {"POSTROUTING", "-s", subnet_, "-j", Chain(slot_, "NAT")}},
      {ip6, "filter", {"INPUT", "-i", bridge_, "-j", Chain(slot_, "V6")}},
      {ip6, "filter", {"FORWARD", "-i", bridge_, "-j", Chain(slot_, "V6")}},
      {ip6, "filter", {"FORWARD", "-o", bridge_, "-j", Chain(slot_, "V6")}},
  };
}

Status SandboxNetwork::Install() {
  // What a previous holder of the slot left: leases of steps that never ended, veths of
  // steps still running when it was killed, and its config.
  std::error_code ec;
  fs::remove_all(dir_, ec);
  fs::create_directories(cni_config_dir_, ec);
  fs::create_directories(dir_ + "/ipam", ec);
  if (ec) return Status::FailedPrecondition("cannot create " + dir_ + ": " + ec.message());
  std::string links;
  if (Run({options_.ip, "-o", "link", "show", "master", bridge_}, &links).ok()) {
    std::istringstream lines(links);
    std::string index, name, rest;
    while (lines >> index >> name && std::getline(lines, rest)) {
      name = name.substr(0, name.find_first_of("@:"));
      if (!name.empty()) (void)Run({options_.ip, "link", "delete", name});
    }
  }
  if (Status s = WriteFile(cni_config_dir_ + "/" + name_ + ".conflist",
                           CniConfig(name_, bridge_, subnet_, gateway_, dir_ + "/ipam"));
      !s.ok()) {
    return s;
  }
  // The slot's chains, flushed and refilled at once; then the jumps into them, once.
  const std::string rules4 = dir_ + "/rules4", rules6 = dir_ + "/rules6";
  if (Status s = WriteFile(rules4, Ipv4Rules(slot_, bridge_, subnet_, options_.deny_networks));
      !s.ok()) {
    return s;
  }
  if (Status s = WriteFile(rules6, Ipv6Rules(slot_)); !s.ok()) return s;
  const char* fix =
      " (the agent needs root and iptables; or run it with --isolation chroot, "
      "unsafe for untrusted Dockerfiles)";
  for (const auto& [tool, file] : {std::pair{options_.iptables_restore, rules4},
                                   std::pair{options_.ip6tables_restore, rules6}}) {
    if (Status s = Run({tool, "-w", "--noflush", file}); !s.ok()) {
      return Status::FailedPrecondition(
          "cannot install the sandbox network's rules: " + s.message() + fix);
    }
  }
  for (const Jump& jump : Jumps()) {
    std::vector<std::string> check = {jump.tool, "-w", "-t", jump.table, "-C"};
    check.insert(check.end(), jump.rule.begin(), jump.rule.end());
    if (Run(check).ok()) continue;
    std::vector<std::string> insert = {jump.tool, "-w", "-t", jump.table, "-I", jump.rule[0], "1"};
    insert.insert(insert.end(), jump.rule.begin() + 1, jump.rule.end());
    if (Status s = Run(insert); !s.ok()) {
      return Status::FailedPrecondition(
          "cannot install the sandbox network's rules: " + s.message() + fix);
    }
  }
  return Status::Ok();
}

void SandboxNetwork::Close() {
  if (lock_fd_ < 0) return;
  for (const Jump& jump : Jumps()) {
    std::vector<std::string> remove = {jump.tool, "-w", "-t", jump.table, "-D"};
    remove.insert(remove.end(), jump.rule.begin(), jump.rule.end());
    // A slot holds each jump once; a few tries also clear what an older agent doubled.
    for (int i = 0; i < 4 && Run(remove).ok(); ++i) {
    }
  }
  const std::vector<std::pair<std::string, std::vector<std::string>>> chains = {
      {options_.iptables, {"filter", Chain(slot_, "IN")}},
      {options_.iptables, {"filter", Chain(slot_, "FWD")}},
      {options_.iptables, {"nat", Chain(slot_, "NAT")}},
      {options_.ip6tables, {"filter", Chain(slot_, "V6")}}};
  for (const auto& [tool, table_chain] : chains) {
    (void)Run({tool, "-w", "-t", table_chain[0], "-F", table_chain[1]});
    (void)Run({tool, "-w", "-t", table_chain[0], "-X", table_chain[1]});
  }
  (void)Run({options_.ip, "link", "delete", bridge_});
  std::error_code ec;
  fs::remove_all(dir_, ec);
  ::close(lock_fd_);
  lock_fd_ = -1;
}

}  // namespace manifold
