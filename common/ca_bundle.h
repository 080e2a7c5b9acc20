// CA bundles an operator gives with --ca-file: PEM certificates that are trusted in addition
// to the system's, for an API served with a certificate from a private CA.
//
// Reading checks that the file holds at least one certificate OpenSSL can parse, so a wrong
// file (a key, a .pub, a DER certificate) is refused when the program starts rather than
// showing up later as a failed handshake. Free functions, thread-safe.
#pragma once

#include <string>

#include "common/status.h"

namespace manifold {

// The PEM text of `path`. `flag` names the option that gave it, for the error message.
Result<std::string> ReadCaBundle(const std::string& path, const std::string& flag);

}  // namespace manifold
