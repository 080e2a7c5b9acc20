#include "tests/support/tls_certs.h"

#include <fstream>

#include "tests/support/subprocess.h"

namespace manifold::test {
namespace {

constexpr auto kOpensslTimeout = std::chrono::seconds(60);

Status Openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r = RunCommand(argv, kOpensslTimeout);
  if (r.exit_code != 0) {
    return Status::Internal("openssl " + args.front() + " failed (exit " +
                            std::to_string(r.exit_code) + "): " + r.output);
  }
  return Status::Ok();
}

// A new RSA key and a certificate for it signed by `ca`, with the extensions in `ext`.
Result<TestCertificate> MakeSignedCertificate(const TestCertificate& ca, const std::string& dir,
                                              const std::string& name, const std::string& cert_file,
                                              const std::string& subject, const std::string& ext) {
  TestCertificate out{cert_file, dir + "/" + name + ".key"};
  const std::string csr = dir + "/" + name + ".csr";
  const std::string ext_file = dir + "/" + name + ".ext";
  std::ofstream(ext_file) << ext;
  Status s = Openssl({"req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout",
                      out.key_file, "-out", csr});
  if (!s.ok()) return s;
  s = Openssl({"x509", "-req", "-in", csr, "-CA", ca.cert_file, "-CAkey", ca.key_file,
               "-CAcreateserial", "-days", "1", "-extfile", ext_file, "-out", out.cert_file});
  if (!s.ok()) return s;
  return out;
}

}  // namespace

Result<TestCertificate> MakeTestCa(const std::string& dir) {
  TestCertificate ca{dir + "/ca.crt", dir + "/ca.key"};
  Status s = Openssl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                      "/CN=manifold test CA", "-keyout", ca.key_file, "-out", ca.cert_file,
                      "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
                      "keyUsage=critical,keyCertSign,cRLSign"});
  if (!s.ok()) return s;
  return ca;
}

Result<TestCertificate> MakeServerCertificate(const TestCertificate& ca, const std::string& dir,
                                              const std::string& name,
                                              const std::string& alt_names) {
  return MakeSignedCertificate(ca, dir, name, dir + "/" + name + ".crt", "/CN=127.0.0.1",
                               "subjectAltName=" + alt_names +
                                   "\n"
                                   "extendedKeyUsage=serverAuth\n"
                                   "basicConstraints=CA:FALSE\n");
}

Result<TestCertificate> MakeClientCertificate(const TestCertificate& ca, const std::string& dir,
                                              const std::string& name) {
  return MakeSignedCertificate(ca, dir, name, dir + "/" + name + ".cert", "/CN=" + name,
                               "extendedKeyUsage=clientAuth\n"
                               "basicConstraints=CA:FALSE\n");
}

Result<TestCertificate> MakeSelfSignedCertificate(const std::string& dir, const std::string& name) {
  TestCertificate out{dir + "/" + name + ".crt", dir + "/" + name + ".key"};
  Status s = Openssl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                      "/CN=" + name, "-keyout", out.key_file, "-out", out.cert_file});
  if (!s.ok()) return s;
  return out;
}

}  // namespace manifold::test
