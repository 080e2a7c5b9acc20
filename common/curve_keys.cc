#include "common/curve_keys.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <vector>

#include "common/digest.h"
#include "common/z85.h"

namespace manifold {
namespace {

constexpr size_t kZ85KeyLength = 40;
constexpr size_t kRawKeyLength = 32;

struct EvpPkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;

// The 32 bytes a Z85 key text stands for, or nullopt if it is not one.
std::optional<std::string> DecodeKey(std::string_view z85) {
  if (z85.size() != kZ85KeyLength) return std::nullopt;
  return Z85Decode(z85);
}

// The Z85 public key of an X25519 key (nullopt if OpenSSL cannot give it).
std::optional<std::string> PublicKeyOf(EVP_PKEY* key) {
  std::string pub(kRawKeyLength, '\0');
  size_t length = pub.size();
  if (key == nullptr || EVP_PKEY_get_raw_public_key(
                            key, reinterpret_cast<unsigned char*>(pub.data()), &length) != 1) {
    return std::nullopt;
  }
  return Z85Encode(pub);
}

struct KeyLine {
  int number = 0;
  std::string key;
  std::string rest;  // the name or comment after the key, trimmed
};

struct KeyFile {
  std::vector<KeyLine> lines;  // those that are not blank or comments
  int secret_header_line = 0;  // where kCurveSecretKeyHeader's comment is: a secret key's file
  bool secret_header() const { return secret_header_line > 0; }
  bool named() const { return !lines.empty() && !lines.front().rest.empty(); }
};

// A key file's lines that are not blank or comments, split into key and the rest.
Result<KeyFile> ReadKeyFile(const std::string& path, const char* what) {
  std::ifstream in(path);
  if (!in) {
    return Status::NotFound("cannot read " + std::string(what) + " " + path + ": " +
                            std::strerror(errno));
  }
  // Up to the colon, so that a reworded advice after it still marks the file.
  std::string_view marker(kCurveSecretKeyHeader);
  marker = marker.substr(0, marker.find(':'));
  KeyFile file;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    std::istringstream words(line);
    KeyLine parsed;
    parsed.number = number;
    if (!(words >> parsed.key)) continue;
    if (parsed.key[0] == '#') {
      if (line.find(marker) != std::string::npos) file.secret_header_line = number;
      continue;
    }
    std::getline(words >> std::ws, parsed.rest);
    while (!parsed.rest.empty() && std::isspace(static_cast<unsigned char>(parsed.rest.back()))) {
      parsed.rest.pop_back();
    }
    file.lines.push_back(std::move(parsed));
  }
  return file;
}

// PATH with the extension `from` replaced by `to`, or `otherwise` if it does not end in it.
std::string SwapExtension(const std::string& path, std::string_view from, std::string_view to,
                          const std::string& otherwise) {
  if (!path.ends_with(from)) return otherwise;
  return path.substr(0, path.size() - from.size()) + std::string(to);
}

// "0644": the permission bits of a mode, as chmod takes them.
std::string ModeText(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof(text), "%04o", static_cast<unsigned>(mode & 07777));
  return text;
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

Result<CurveKeyPair> GenerateCurveKeyPair() {
  // CURVE keys are X25519 keys (libsodium's crypto_box): a random 32-byte secret and the
  // public point derived from it, so OpenSSL makes pairs that libzmq accepts as they are.
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
  std::string secret(kRawKeyLength, '\0');
  size_t secret_length = secret.size();
  std::optional<std::string> pub = PublicKeyOf(key.get());
  if (!pub ||
      EVP_PKEY_get_raw_private_key(key.get(), reinterpret_cast<unsigned char*>(secret.data()),
                                   &secret_length) != 1) {
    return Status::Internal("cannot generate a CURVE key pair: OpenSSL has no X25519");
  }
  return CurveKeyPair{*pub, Z85Encode(secret)};
}

bool IsCurveKey(std::string_view z85) { return DecodeKey(z85).has_value(); }

Result<std::string> CurvePublicKeyOf(const std::string& secret_key) {
  std::optional<std::string> secret = DecodeKey(secret_key);
  if (!secret) return Status::InvalidArgument("not a Z85 CURVE secret key");
  EvpPkeyPtr key(EVP_PKEY_new_raw_private_key(
      EVP_PKEY_X25519, nullptr, reinterpret_cast<const unsigned char*>(secret->data()),
      secret->size()));
  std::optional<std::string> pub = PublicKeyOf(key.get());
  if (!pub) return Status::Internal("cannot derive the CURVE public key: OpenSSL has no X25519");
  return *pub;
}

std::string CurveKeyFingerprint(std::string_view public_key) {
  std::optional<std::string> raw = DecodeKey(public_key);
  if (!raw) return "SHA256:invalid";
  return "SHA256:" + DigestHex(Sha256Digest(*raw)).substr(0, 16);
}

Status WriteCurveKeyPair(const CurveKeyPair& pair, const std::string& secret_path,
                         const std::string& public_path, const std::string& name) {
  struct stat existing;
  if (stat(public_path.c_str(), &existing) == 0) {
    return Status::AlreadyExists(public_path + " exists; remove it first or choose another name");
  }
  std::string secret = std::string(kCurveSecretKeyHeader) + "\n" + pair.secret_key + "\n";
  if (Status s = WriteNewFile(secret_path, secret, 0600); !s.ok()) return s;
  std::string line = pair.public_key + (name.empty() ? "" : " " + name) + "\n";
  if (Status s = WriteNewFile(public_path, line, 0644); !s.ok()) {
    unlink(secret_path.c_str());
    return s;
  }
  return Status::Ok();
}

Result<std::string> ReadCurveSecretKey(const std::string& path) {
  Result<KeyFile> file = ReadKeyFile(path, "CURVE secret key");
  if (!file.ok()) return file.status();
  // A swapped file is a different file to pass, so say that before any chmod advice.
  if (!file->secret_header() && (path.ends_with(".pub") || file->named())) {
    return Status::InvalidArgument(
        path +
        " is a public-key file (manifold keygen writes PREFIX.pub for sharing and PREFIX.key "
        "for --curve-secret-key); pass " +
        SwapExtension(path, ".pub", ".key", "the PREFIX.key made with it"));
  }
  struct stat info;
  if (stat(path.c_str(), &info) != 0) {
    return Status::NotFound("cannot read CURVE secret key " + path + ": " + std::strerror(errno));
  }
  if (info.st_mode & (S_IRWXG | S_IRWXO)) {
    return Status::FailedPrecondition(
        "CURVE secret key " + path + " is open to group or others (mode " + ModeText(info.st_mode) +
        "); run chmod 600 " + path +
        " (and make a new pair with manifold keygen if someone else may have read it)");
  }
  if (file->lines.size() != 1 || !IsCurveKey(file->lines.front().key)) {
    return Status::InvalidArgument(path +
                                   " does not hold one Z85 CURVE secret key (make one with "
                                   "`manifold keygen`)");
  }
  return file->lines.front().key;
}

Result<std::string> ReadCurvePublicKey(const std::string& path) {
  Result<KeyFile> file = ReadKeyFile(path, "CURVE public key");
  if (!file.ok()) return file.status();
  const std::string fix =
      "; pass " + SwapExtension(path, ".key", ".pub", "the PREFIX.pub made with it") +
      " (a secret key belongs on its own host only: delete copies of it elsewhere)";
  if (file->secret_header() || path.ends_with(".key")) {
    return Status::InvalidArgument(path +
                                   " is a secret-key file (manifold keygen writes PREFIX.key "
                                   "to keep on its host and PREFIX.pub for sharing)" +
                                   fix);
  }
  // An old secret-key file: a lone key that only its owner may read. keygen's .pub files
  // always have a name, and are 0644.
  struct stat info;
  if (!file->named() && file->lines.size() == 1 && stat(path.c_str(), &info) == 0 &&
      (info.st_mode & (S_IRWXG | S_IRWXO)) == 0) {
    return Status::InvalidArgument(path + " looks like a secret-key file (mode " +
                                   ModeText(info.st_mode) +
                                   " and a key without a name, as in manifold keygen's "
                                   "PREFIX.key)" +
                                   fix + "; if it is a public key, chmod 644 " + path);
  }
  if (file->lines.empty() || !IsCurveKey(file->lines.front().key)) {
    return Status::InvalidArgument(path +
                                   " does not start with a Z85 CURVE public key (the .pub "
                                   "file `manifold keygen` wrote)");
  }
  return file->lines.front().key;
}

Result<std::string> ReadCoordinatorPublicKey(const std::string& path,
                                             const std::string& agent_secret_key) {
  Result<std::string> key = ReadCurvePublicKey(path);
  if (!key.ok()) return key;
  Result<std::string> own = CurvePublicKeyOf(agent_secret_key);
  if (own.ok() && *own == *key) {
    return Status::InvalidArgument(
        path +
        " is this agent's own public key (the pair of its --curve-secret-key); pass the "
        "coordinator's PREFIX.pub, copied from the coordinator host");
  }
  return key;
}

Result<CurveAllowList> ReadCurveAllowList(const std::string& path) {
  Result<KeyFile> file = ReadKeyFile(path, "agent key list");
  if (!file.ok()) return file.status();
  if (file->secret_header()) {
    return Status::InvalidArgument(path + " line " + std::to_string(file->secret_header_line) +
                                   ": a secret-key file (manifold keygen's PREFIX.key) was "
                                   "added here; remove it and append the agent's PREFIX.pub");
  }
  CurveAllowList keys;
  for (const KeyLine& line : file->lines) {
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
