#include "common/curve_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "common/digest.h"

namespace manifold {
namespace {

constexpr size_t kZ85KeyLength = 40;

struct KeyLine {
  int number = 0;
  std::string key;
  std::string rest;  // the name or comment after the key, trimmed
};

// The lines of a key file that are not blank or comments, split into key and the rest.
Result<std::vector<KeyLine>> ReadKeyLines(const std::string& path, const char* what) {
  std::ifstream in(path);
  if (!in) {
    return Status::NotFound("cannot read " + std::string(what) + " " + path + ": " +
                            std::strerror(errno));
  }
  std::vector<KeyLine> lines;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    std::istringstream words(line);
    KeyLine parsed;
    parsed.number = number;
    if (!(words >> parsed.key) || parsed.key[0] == '#') continue;
    std::getline(words >> std::ws, parsed.rest);
    while (!parsed.rest.empty() && std::isspace(static_cast<unsigned char>(parsed.rest.back()))) {
      parsed.rest.pop_back();
    }
    lines.push_back(std::move(parsed));
  }
  return lines;
}

Status WriteNewFile(const std::string& path, const std::string& text, mode_t mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    if (errno == EEXIST) {
      return Status::AlreadyExists(path + " exists; remove it first or choose another name");
    }
    return Status::FailedPrecondition("cannot create " + path + ": " + std::strerror(errno));
  }
  bool written = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  bool closed = close(fd) == 0;
  if (!written || !closed) {
    unlink(path.c_str());
    return Status::Internal("cannot write " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace

bool CurveAvailable() { return zmq_has("curve") == 1; }

Result<CurveKeyPair> GenerateCurveKeyPair() {
  char public_key[kZ85KeyLength + 1] = {};
  char secret_key[kZ85KeyLength + 1] = {};
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    return Status::FailedPrecondition(
        "cannot generate a CURVE key pair: " + std::string(zmq_strerror(zmq_errno())) +
        " (is libzmq built with CURVE support?)");
  }
  return CurveKeyPair{public_key, secret_key};
}

bool IsCurveKey(std::string_view z85) {
  if (z85.size() != kZ85KeyLength) return false;
  std::string text(z85);
  uint8_t raw[32];
  return zmq_z85_decode(raw, text.c_str()) != nullptr;
}

Result<std::string> CurvePublicKeyOf(const std::string& secret_key) {
  if (!IsCurveKey(secret_key)) return Status::InvalidArgument("not a Z85 CURVE secret key");
  char public_key[kZ85KeyLength + 1] = {};
  if (zmq_curve_public(public_key, secret_key.c_str()) != 0) {
    return Status::FailedPrecondition("cannot derive the CURVE public key: " +
                                      std::string(zmq_strerror(zmq_errno())));
  }
  return std::string(public_key);
}

std::string CurveKeyFingerprint(std::string_view public_key) {
  uint8_t raw[32];
  std::string text(public_key);
  if (!IsCurveKey(text) || zmq_z85_decode(raw, text.c_str()) == nullptr) return "SHA256:invalid";
  std::string digest = Sha256Digest(std::string_view(reinterpret_cast<char*>(raw), sizeof(raw)));
  return "SHA256:" + DigestHex(digest).substr(0, 16);
}

Status WriteCurveKeyPair(const CurveKeyPair& pair, const std::string& secret_path,
                         const std::string& public_path, const std::string& name) {
  struct stat existing;
  if (stat(public_path.c_str(), &existing) == 0) {
    return Status::AlreadyExists(public_path + " exists; remove it first or choose another name");
  }
  if (Status s = WriteNewFile(secret_path, pair.secret_key + "\n", 0600); !s.ok()) return s;
  std::string line = pair.public_key + (name.empty() ? "" : " " + name) + "\n";
  if (Status s = WriteNewFile(public_path, line, 0644); !s.ok()) {
    unlink(secret_path.c_str());
    return s;
  }
  return Status::Ok();
}

Result<std::string> ReadCurveSecretKey(const std::string& path) {
  struct stat info;
  if (stat(path.c_str(), &info) != 0) {
    return Status::NotFound("cannot read CURVE secret key " + path + ": " + std::strerror(errno));
  }
  if (info.st_mode & (S_IRWXG | S_IRWXO)) {
    return Status::FailedPrecondition("CURVE secret key " + path +
                                      " is accessible by group or others; chmod 600 " + path);
  }
  Result<std::vector<KeyLine>> lines = ReadKeyLines(path, "CURVE secret key");
  if (!lines.ok()) return lines.status();
  if (lines->size() != 1 || !IsCurveKey(lines->front().key)) {
    return Status::InvalidArgument(path +
                                   " does not hold one Z85 CURVE secret key (make one with "
                                   "`manifold keygen`)");
  }
  return lines->front().key;
}

Result<std::string> ReadCurvePublicKey(const std::string& path) {
  Result<std::vector<KeyLine>> lines = ReadKeyLines(path, "CURVE public key");
  if (!lines.ok()) return lines.status();
  if (lines->empty() || !IsCurveKey(lines->front().key)) {
    return Status::InvalidArgument(path +
                                   " does not start with a Z85 CURVE public key (the .pub "
                                   "file `manifold keygen` wrote)");
  }
  return lines->front().key;
}

Result<CurveAllowList> ReadCurveAllowList(const std::string& path) {
  Result<std::vector<KeyLine>> lines = ReadKeyLines(path, "agent key list");
  if (!lines.ok()) return lines.status();
  CurveAllowList keys;
  for (const KeyLine& line : *lines) {
    if (!IsCurveKey(line.key)) {
      return Status::InvalidArgument(path + " line " + std::to_string(line.number) +
                                     ": expected a 40-character Z85 public key, then an "
                                     "optional name");
    }
    keys[line.key] = line.rest;
  }
  return keys;
}

}  // namespace manifold
