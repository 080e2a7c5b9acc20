#include "common/ca_bundle.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/temp_dir.h"
#include "tests/support/tls_certs.h"

namespace manifold {
namespace {

TEST(CaBundle, TakesPemCertificatesAndRefusesAnythingElseNamingTheFlag) {
  test::TempDir dir("ca-bundle");
  Result<test::TestCertificate> ca = test::MakeTestCa(dir.path());
  ASSERT_TRUE(ca.ok()) << ca.status().message();
  Result<std::string> pem = ReadCaBundle(ca->cert_file, "--ca-file");
  ASSERT_TRUE(pem.ok()) << pem.status().message();
  EXPECT_NE(pem->find("-----BEGIN CERTIFICATE-----"), std::string::npos);

  // The CA's key, a CURVE public key and a missing file are each refused with the flag.
  const std::string pub = dir.path() + "/coordinator.pub";
  std::ofstream(pub) << "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7 coordinator\n";
  for (const std::string& wrong : {ca->key_file, pub}) {
    Result<std::string> refused = ReadCaBundle(wrong, "--ca-file");
    ASSERT_FALSE(refused.ok()) << wrong;
    EXPECT_EQ(refused.status().message(),
              wrong +
                  " (--ca-file) holds no PEM certificate: give the CA certificate that signed "
                  "the API's certificate, as text starting with -----BEGIN CERTIFICATE----- "
                  "(convert a DER file with `openssl x509 -inform der -in FILE -out ca.pem`)");
  }
  Result<std::string> missing = ReadCaBundle(dir.path() + "/absent.pem", "--ca-file");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("cannot read the CA file " + dir.path() +
                                            "/absent.pem (--ca-file): No such file"),
            std::string::npos)
      << missing.status().message();
}

}  // namespace
}  // namespace manifold
