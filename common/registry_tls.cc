#include "common/registry_tls.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>
#include <vector>

namespace manifold {
namespace {

std::string ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

RegistryTls::RegistryTls(std::string host, std::string certs_dir)
    : host_(std::move(host)), certs_dir_(std::move(certs_dir)) {
  // Every *.crt is a CA to trust, every *.cert with its *.key a client identity.
  const std::string certs = certs_dir_.empty() ? "" : certs_dir_ + "/" + host_;
  std::error_code ec;
  has_certs_dir_ = !certs.empty() && std::filesystem::is_directory(certs, ec);
  if (!has_certs_dir_) return;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(certs, ec)) {
    files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    if (file.extension() == ".crt") {
      std::string pem = ReadSmallFile(file.string());
      if (pem.empty()) {
        status_ = Status::FailedPrecondition("cannot read the CA certificate " + file.string());
      }
      extra_ca_pem_ += pem;
      if (!pem.empty() && pem.back() != '\n') extra_ca_pem_.push_back('\n');
    } else if (file.extension() == ".cert") {
      std::filesystem::path key = file;
      key.replace_extension(".key");
      if (!std::filesystem::exists(key, ec)) {
        status_ = Status::FailedPrecondition(
            "the client certificate " + file.string() + " has no key " + key.string() +
            " beside it; docker's certs.d layout needs both: put the certificate's private "
            "key (PEM) there, or remove the certificate");
      } else {
        client_cert_ = file.string();
        client_key_ = key.string();
      }
    }
  }
}

void RegistryTls::Apply(HttpRequest* request) const {
  request->extra_ca_pem = extra_ca_pem_;
  request->client_cert_file = client_cert_;
  request->client_key_file = client_key_;
}

Status RegistryTls::Explain(const Status& failure) const {
  const std::string& message = failure.message();
  auto has = [&message](const char* text) { return message.find(text) != std::string::npos; };
  const std::string dir = certs_dir_ + "/" + host_;
  if (has("wrong version number")) {
    return Status::FailedPrecondition(
        message + "; " + host_ +
        " answered without TLS (plain HTTP?). If it is meant to be used over plain HTTP, "
        "list it as an insecure registry (--insecure-registry " +
        host_ +
        "), knowing that everything sent to it, credentials included, then travels "
        "unencrypted; otherwise check the port");
  }
  if (has("alert") && (has("certificate") || has("unknown ca"))) {
    if (client_cert_.empty()) {
      return Status::FailedPrecondition(
          message +
          "; the registry requires a client certificate (mutual TLS) and none is "
          "configured: put the certificate and its private key (PEM) in " +
          dir + "/ as client.cert and client.key");
    }
    return Status::FailedPrecondition(message + "; the registry refused the client certificate " +
                                      client_cert_ +
                                      " (is it signed by a CA the registry trusts for clients, "
                                      "and still valid?)");
  }
  if (has("local SSL certificate") || has("private key")) {
    return Status::FailedPrecondition(message + "; cannot use the client certificate " +
                                      client_cert_ + " with the key " + client_key_ +
                                      ": both must be PEM and the key must match the "
                                      "certificate");
  }
  if (has("SSL") || has("certificate")) {
    return Status::FailedPrecondition(
        message + "; if the registry uses its own CA, put its certificate in " + dir + "/ca.crt");
  }
  return failure;
}

bool IsTlsSessionFailure(const Status& failure) {
  for (const char* what : {"SSL connect error", "Failed sending data to the peer",
                           "Failure when receiving data from the peer"}) {
    if (failure.message().find(what) != std::string::npos) return true;
  }
  return false;
}

}  // namespace manifold
