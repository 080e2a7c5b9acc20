#include "cli/keygen.h"

#include <filesystem>

#include "common/curve_keys.h"

namespace manifold {

int RunKeygen(const std::string& prefix, std::string name, std::ostream* out, std::ostream* err) {
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
  *out << "secret key: " << secret_path << " (keep it on this host only)\n"
       << "public key: " << public_path << " (" << CurveKeyFingerprint(pair->public_key) << ")\n"
       << "for an agent, append " << public_path
       << " to the coordinator's --agent-keys file and send the coordinator SIGHUP\n";
  return 0;
}

}  // namespace manifold
