// CURVE keys for the agent link: generating, reading and writing ZeroMQ key pairs, the
// coordinator's allow-list of agent public keys, and short fingerprints for logs.
//
// Keys are the 40-character Z85 text ZeroMQ uses, made and checked with OpenSSL's X25519 (the
// curve CURVE uses), so this needs no libzmq; common/curve_support.h asks libzmq whether its
// sockets can use them. A secret-key file holds one secret key, after a comment line that
// says what it is (files without it, from older versions, are read too), and must not be
// readable by group or others (as ssh insists for its keys); a public-key file holds one
// public key, optionally followed by a name. Both keys are 40 Z85 characters, so the readers
// tell a swapped file by its form: a name after the key or a .pub path is a public-key file,
// the comment line or a .key path a secret one. The allow-list has one public key per line
// with an optional name or comment after it; '#' starts a comment line. Free functions,
// thread-safe.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "common/status.h"

namespace manifold {

struct CurveKeyPair {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // Z85, 40 characters
};

Result<CurveKeyPair> GenerateCurveKeyPair();

// True for 40 Z85 characters that decode to a 32-byte key.
bool IsCurveKey(std::string_view z85);

// The public key that belongs to a Z85 secret key.
Result<std::string> CurvePublicKeyOf(const std::string& secret_key);

// "SHA256:" and the first 16 hex digits of the sha256 of the raw 32-byte key: short enough
// for a log line, long enough to tell keys apart.
std::string CurveKeyFingerprint(std::string_view public_key);

// The first line of a secret-key file WriteCurveKeyPair writes.
constexpr char kCurveSecretKeyHeader[] =
    "# manifold CURVE secret key: keep on this host, mode 0600";

// Writes SECRET_PATH (mode 0600: kCurveSecretKeyHeader, then the key) and PUBLIC_PATH
// ("KEY NAME\n", ready to append to an allow-list). Refuses to overwrite either file, so a
// key in use is never lost.
Status WriteCurveKeyPair(const CurveKeyPair& pair, const std::string& secret_path,
                         const std::string& public_path, const std::string& name);

// Reads a secret-key file. Refuses a public-key file (before looking at its mode, as the
// fix is another file, not chmod) and one that group or others may read.
Result<std::string> ReadCurveSecretKey(const std::string& path);
// Reads a public-key file (the first word of its first line that is not a comment).
// Refuses a secret-key file: one with kCurveSecretKeyHeader, a path ending in .key, or a
// lone key without a name that only its owner may read, as an old secret-key file is.
Result<std::string> ReadCurvePublicKey(const std::string& path);
// ReadCurvePublicKey for an agent's --coordinator-public-key, which also refuses the public
// key of `agent_secret_key`, the agent's own (its .pub given where the coordinator's goes).
Result<std::string> ReadCoordinatorPublicKey(const std::string& path,
                                             const std::string& agent_secret_key);

// Public key -> name ("" when the line gave none). An invalid line fails the whole read,
// naming the file and line, so a typo never silently locks agents out or lets one in.
using CurveAllowList = std::map<std::string, std::string>;
Result<CurveAllowList> ReadCurveAllowList(const std::string& path);

}  // namespace manifold
