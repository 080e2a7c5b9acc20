// TestCa: a throwaway certificate authority and certificates signed by it, made with the
// `openssl` command, for tests of TLS registries and signed registry tokens.
//
// Everything lives in the caller's directory and is valid for a day; nothing touches the
// system's trust store. Used from one thread.
#pragma once

#include <string>

#include "common/status.h"

namespace manifold::test {

struct TestCertificate {
  std::string cert_file;  // PEM
  std::string key_file;   // PEM, unencrypted
};

// Creates DIR/ca.crt and DIR/ca.key (an RSA-2048 CA) and returns them.
Result<TestCertificate> MakeTestCa(const std::string& dir);

// Creates DIR/NAME.crt and DIR/NAME.key: a server certificate for `alt_names` (OpenSSL's
// subjectAltName syntax; 127.0.0.1 and localhost unless given) signed by `ca`.
Result<TestCertificate> MakeServerCertificate(
    const TestCertificate& ca, const std::string& dir, const std::string& name,
    const std::string& alt_names = "IP:127.0.0.1,DNS:localhost");

// Creates DIR/NAME.cert and DIR/NAME.key: a client certificate (extendedKeyUsage
// clientAuth, subject CN=NAME) signed by `ca`, named as docker's certs.d names them.
Result<TestCertificate> MakeClientCertificate(const TestCertificate& ca, const std::string& dir,
                                              const std::string& name);

// Creates DIR/NAME.crt and DIR/NAME.key: a self-signed RSA-2048 certificate, the kind a
// token server signs JWTs with and a registry trusts through its rootcertbundle.
Result<TestCertificate> MakeSelfSignedCertificate(const std::string& dir, const std::string& name);

}  // namespace manifold::test
