#include "common/ca_bundle.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

namespace manifold {

namespace {

// How many PEM certificates `pem` holds that OpenSSL can parse.
int CountCertificates(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), pem.size()), &BIO_free);
  if (bio == nullptr) return 0;
  int count = 0;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    X509_free(cert);
    ++count;
  }
  ERR_clear_error();  // the read that ends the loop leaves "no start line" queued
  return count;
}

}  // namespace

Result<std::string> ReadCaBundle(const std::string& path, const std::string& flag) {
  std::ifstream in(path);
  if (!in) {
    return Status::NotFound("cannot read the CA file " + path + " (" + flag +
                            "): " + std::strerror(errno));
  }
  std::stringstream text;
  text << in.rdbuf();
  if (CountCertificates(text.str()) == 0) {
    return Status::InvalidArgument(
        path + " (" + flag +
        ") holds no PEM certificate: give the CA certificate that signed the API's "
        "certificate, as text starting with -----BEGIN CERTIFICATE----- (convert a DER "
        "file with `openssl x509 -inform der -in FILE -out ca.pem`)");
  }
  return text.str();
}

}  // namespace manifold
