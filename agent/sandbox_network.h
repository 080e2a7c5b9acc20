// SandboxNetwork: the private, NAT'd network that a buildah agent's RUN steps join by
// default (BuildRequest.network ""), and the host firewall rules that fence it in.
//
// Each agent has a network of its own, not one per host: the deny list (--deny-network)
// is an agent setting, so two agents on one host may need different rules, and an agent
// that owns its network can reset it at start without asking anyone. The network lives in
// a numbered slot N (0..kSlots-1) under state_dir: the agent holds an exclusive flock on
// state_dir/N.lock for as long as it runs, and the kernel drops the lock when the agent
// dies, SIGKILL included, so the next agent to take slot N knows the slot's leftovers are
// garbage. Slot N owns the bridge mfd-sbxN, the subnet range's Nth /24, its CNI config
// and host-local IPAM leases under state_dir/N, and the iptables chains MANIFOLD-SBX-N-*.
// Opening a slot rewrites all of them (chains flushed and refilled in one
// iptables-restore, the jumps to them added only when missing, stale leases and veths
// deleted), so rules never accumulate however often agents are killed and restarted, and
// Close removes them again.
//
// What a RUN step on the network can reach: the outside through the host's NAT, except
// - the host itself: every packet from the bridge to a host address (the gateway, every
//   interface address, also over IPv6) is rejected in INPUT; the host's loopback is out
//   of reach anyway, the step has a loopback of its own;
// - link-local 169.254.0.0/16 (cloud metadata services) and each deny CIDR, in FORWARD;
// - other steps: new connections into the bridge from outside are rejected, and so is
//   traffic between two ports of the bridge where br_netfilter passes bridged frames to
//   iptables (it is loaded here; without it two steps of one agent running at the same
//   time share one link).
// IPv6 is not forwarded at all. net.ipv4.ip_forward must be on for egress; the CNI
// bridge plugin turns it on.
//
// Thread-safety: Open and Close are for agent start-up and shutdown, one thread; the
// accessors are const and may be read from any thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/command_runner.h"
#include "common/status.h"

namespace manifold {

struct SandboxNetworkOptions {
  // Slot locks, CNI configs and IPAM leases; on a tmpfs, so a reboot (which removes the
  // bridges and rules too) starts from nothing.
  std::string state_dir = "/run/manifold-sandbox";
  // An IPv4 /16 whose Nth /24 is slot N's subnet; must not overlap the host's networks.
  std::string range = "10.213.0.0/16";
  // More destinations RUN steps may not reach (IPv4 CIDRs), e.g. the operator's LAN.
  std::vector<std::string> deny_networks;
  std::string iptables_restore = "iptables-restore";
  std::string ip6tables_restore = "ip6tables-restore";
  std::string iptables = "iptables";
  std::string ip6tables = "ip6tables";
  std::string ip = "ip";
};

class SandboxNetwork {
 public:
  static constexpr int kSlots = 64;

  // Takes the first free slot and installs its network; FailedPrecondition naming what to
  // fix (run as root, install iptables, free a slot) when it cannot.
  static Result<std::unique_ptr<SandboxNetwork>> Open(const SandboxNetworkOptions& options,
                                                      CommandRunner& runner);
  // Close()s.
  ~SandboxNetwork();
  SandboxNetwork(const SandboxNetwork&) = delete;
  SandboxNetwork& operator=(const SandboxNetwork&) = delete;

  // Removes the slot's rules, bridge and state, then lets the slot go. Best effort: what
  // it cannot remove the next agent in the slot resets.
  void Close();

  // For buildah: --cni-config-dir and --network.
  const std::string& cni_config_dir() const { return cni_config_dir_; }
  const std::string& name() const { return name_; }
  const std::string& bridge() const { return bridge_; }
  // "10.213.N.0/24" and its gateway, the bridge's address.
  const std::string& subnet() const { return subnet_; }
  const std::string& gateway() const { return gateway_; }

  // The iptables-restore input (--noflush) that resets slot `slot`'s IPv4 chains; exposed
  // for tests.
  static std::string Ipv4Rules(int slot, const std::string& bridge, const std::string& subnet,
                               const std::vector<std::string>& deny_networks);

 private:
  SandboxNetwork(const SandboxNetworkOptions& options, CommandRunner& runner, int slot,
                 int lock_fd);
  Status Install();
  // The jump from a built-in chain into one of the slot's chains, added when missing
  // (Install) or deleted (Close).
  struct Jump {
    std::string tool;
    std::string table;
    std::vector<std::string> rule;  // e.g. {"INPUT", "-i", bridge, "-j", chain}
  };
  std::vector<Jump> Jumps() const;
  Status Run(const std::vector<std::string>& argv, std::string* output = nullptr) const;

  SandboxNetworkOptions options_;
  CommandRunner& runner_;
  int slot_;
  int lock_fd_;
  std::string dir_;
  std::string cni_config_dir_;
  std::string name_;
  std::string bridge_;
  std::string subnet_;
  std::string gateway_;
};

// "a.b.c.d/len" with len <= 32, for --deny-network; an error saying what is wrong.
Status CheckIpv4Cidr(const std::string& cidr);

}  // namespace manifold
