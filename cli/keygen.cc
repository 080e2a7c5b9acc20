#include "cli/keygen.h"

#include <filesystem>

#include "common/curve_keys.h"

namespace manifold {

int RunKeygen(const std::string& prefix, std::string name, const std::string& role,
              std::ostream* out, std::ostream* err) {
  if (name.empty()) name = std::filesystem::path(prefix).filename().string();
  if (name.empty() || name.find_first_of(" \t\r\n#") != std::string::npos) {
    *err << "manifold keygen: the key's name must be one word without '#' (set --name)\n";
    return 2;
  }
  Result<CurveKeyPair> pair = GenerateCurveKeyPair();
  if (!pair.ok()) {
    *err << "manifold keygen: " << pair.status().message() << "\n";
    return 1;
  }
  std::string secret_path = prefix + ".key", public_path = prefix + ".pub";
  if (Status written = WriteCurveKeyPair(*pair, secret_path, public_path, name); !written.ok()) {
    *err << "manifold keygen: " << written.message() << "\n";
    return 1;
  }
  *out << "secret key: " << secret_path << " (mode 0600; it never leaves its host)\n"
       << "public key: " << public_path << " (" << CurveKeyFingerprint(pair->public_key) << ")\n";
  if (role != "agent") {
    *out << "for the coordinator (--role coordinator):\n"
         << "  keep " << secret_path
         << " on the coordinator host, for manifold-coordinator --curve-secret-key\n"
         << "  copy " << public_path
         << " to every agent host, for manifold-agent --coordinator-public-key\n";
  }
  if (role != "coordinator") {
    *out << "for an agent (--role agent):\n"
         << "  keep " << secret_path
         << " on that agent's host, for manifold-agent --curve-secret-key\n"
         << "  append " << public_path
         << " to the coordinator's --agent-keys file, then reload the coordinator (systemctl "
            "reload manifold-coordinator, or kill -HUP the pid in its --pid-file)\n";
  }
  return 0;
}

}  // namespace manifold
