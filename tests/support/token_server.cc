#include "tests/support/token_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "common/docker_config.h"

namespace manifold::test {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Base64Url(std::string_view bytes) {
  std::string b = Base64Encode(bytes);
  while (!b.empty() && b.back() == '=') b.pop_back();
  for (char& c : b) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return b;
}

std::string UrlDecode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      out.push_back(static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else if (text[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

void WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

void Respond(int fd, int status, const std::string& body) {
  const char* reason = status == 200 ? "OK" : status == 401 ? "Unauthorized" : "Bad Request";
  WriteAll(fd, "HTTP/1.1 " + std::to_string(status) + " " + reason +
                   "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n" + body);
}

}  // namespace

TokenServer::~TokenServer() { Stop(); }

Status TokenServer::Start(const std::string& cert_file, const std::string& key_file,
                          const std::string& issuer, const std::string& service,
                          std::map<std::string, TokenUser> users) {
  key_pem_ = ReadFile(key_file);
  const std::string cert_pem = ReadFile(cert_file);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())), &BIO_free);
  X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
  if (cert == nullptr || key_pem_.empty()) {
    if (cert != nullptr) X509_free(cert);
    return Status::Internal("token server: cannot read " + cert_file + " or " + key_file);
  }
  unsigned char* der = nullptr;
  int der_size = i2d_X509(cert, &der);
  X509_free(cert);
  if (der_size <= 0) return Status::Internal("token server: cannot encode " + cert_file);
  cert_der_base64_ = Base64Encode(std::string_view(reinterpret_cast<char*>(der), der_size));
  OPENSSL_free(der);
  issuer_ = issuer;
  service_ = service;
  users_ = std::move(users);

  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return Status::Internal("token server: socket failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(listen_fd_, 16) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    return Status::Internal("token server: cannot listen on 127.0.0.1");
  }
  port_ = ntohs(address.sin_port);
  stop_ = false;
  thread_ = std::thread([this] { Serve(); });
  return Status::Ok();
}

void TokenServer::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
}

std::string TokenServer::realm() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/token";
}

void TokenServer::Serve() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    timeval timeout{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    Handle(fd);
    ::close(fd);
  }
}

void TokenServer::Handle(int fd) {
  std::string request;
  char buffer[4096];
  while (request.find("\r\n\r\n") == std::string::npos && request.size() < 65536) {
    ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) return;
    request.append(buffer, static_cast<size_t>(n));
  }
  const size_t line_end = request.find("\r\n");
  const size_t headers_end = request.find("\r\n\r\n");
  if (headers_end == std::string::npos) return;
  const std::string line = request.substr(0, line_end);
  std::map<std::string, std::string> headers;  // names lowercased
  {
    std::istringstream lines(request.substr(line_end + 2, headers_end - line_end - 2));
    std::string header;
    while (std::getline(lines, header)) {
      if (!header.empty() && header.back() == '\r') header.pop_back();
      const size_t colon = header.find(':');
      if (colon == std::string::npos) continue;
      std::string name = header.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      const size_t value = header.find_first_not_of(' ', colon + 1);
      headers[name] = value == std::string::npos ? "" : header.substr(value);
    }
  }
  if (line.rfind("POST /token ", 0) == 0) {
    const size_t length = std::strtoul(headers["content-length"].c_str(), nullptr, 10);
    std::string body = request.substr(headers_end + 4);
    while (body.size() < length && body.size() < 65536) {
      ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) return;
      body.append(buffer, static_cast<size_t>(n));
    }
    if (headers["content-type"].rfind("application/x-www-form-urlencoded", 0) != 0) {
      Respond(fd, 400, R"({"error":"invalid_request","error_description":"not a form"})");
      return;
    }
    auto [status, answer] = RefreshGrant(body.substr(0, length));
    Respond(fd, status, answer);
    return;
  }
  if (line.rfind("GET /token", 0) != 0) {
    Respond(fd, 400, R"({"errors":[{"code":"UNSUPPORTED","message":"GET or POST /token only"}]})");
    return;
  }
  const size_t target_end = line.find(' ', 4);
  const std::string target = line.substr(4, target_end - 4);
  std::vector<std::string> scopes;
  const size_t q = target.find('?');
  if (q != std::string::npos) {
    std::istringstream params(target.substr(q + 1));
    std::string param;
    while (std::getline(params, param, '&')) {
      if (param.rfind("scope=", 0) == 0) scopes.push_back(UrlDecode(param.substr(6)));
    }
  }
  std::string user;
  std::string password;
  const std::string& authorization = headers["authorization"];
  if (authorization.size() > 6 &&
      (authorization.rfind("Basic ", 0) == 0 || authorization.rfind("basic ", 0) == 0)) {
    std::optional<std::string> decoded = Base64Decode(authorization.substr(6));
    if (decoded && decoded->find(':') != std::string::npos) {
      user = decoded->substr(0, decoded->find(':'));
      password = decoded->substr(decoded->find(':') + 1);
    }
  }
  auto known = users_.find(user);
  if (known == users_.end() || known->second.password != password) {
    Respond(fd, 401,
            R"({"errors":[{"code":"UNAUTHORIZED","message":"invalid username or password"}]})");
    return;
  }
  const std::string token = IssueToken(user, scopes);
  if (token.empty()) {
    Respond(fd, 400, R"({"errors":[{"code":"INTERNAL","message":"signing failed"}]})");
    return;
  }
  ++tokens_issued_;
  nlohmann::json body = {{"token", token}, {"access_token", token}, {"expires_in", 300}};
  Respond(fd, 200, body.dump());
}

std::pair<int, std::string> TokenServer::RefreshGrant(const std::string& form) {
  std::map<std::string, std::string> fields;
  std::vector<std::string> scopes;
  std::istringstream params(form);
  std::string param;
  while (std::getline(params, param, '&')) {
    const size_t eq = param.find('=');
    if (eq == std::string::npos) continue;
    const std::string name = UrlDecode(param.substr(0, eq));
    const std::string value = UrlDecode(param.substr(eq + 1));
    if (name != "scope") {
      fields[name] = value;
      continue;
    }
    // One field of space-separated scopes, as the spec has it (repeated fields also work).
    std::istringstream split(value);
    std::string scope;
    while (split >> scope) scopes.push_back(scope);
  }
  auto oauth_error = [](const std::string& error, const std::string& description) {
    return nlohmann::json{{"error", error}, {"error_description", description}}.dump();
  };
  if (fields["grant_type"] != "refresh_token") {
    return {400, oauth_error("unsupported_grant_type", "only refresh_token is supported")};
  }
  if (fields["client_id"].empty()) return {400, oauth_error("invalid_request", "no client_id")};
  if (fields["service"] != service_) {
    return {400, oauth_error("invalid_request", "unknown service \"" + fields["service"] + "\"")};
  }
  const std::string& refresh_token = fields["refresh_token"];
  auto user = std::find_if(users_.begin(), users_.end(), [&](const auto& entry) {
    return !refresh_token.empty() && entry.second.identity_token == refresh_token;
  });
  if (user == users_.end()) return {401, oauth_error("invalid_grant", "unknown refresh token")};
  const std::string token = IssueToken(user->first, scopes);
  if (token.empty()) return {400, oauth_error("server_error", "signing failed")};
  ++tokens_issued_;
  ++refresh_grants_;
  // The OAuth2 answer has only access_token (no "token"), so a client must read that.
  return {200, nlohmann::json{{"access_token", token}, {"expires_in", 300}}.dump()};
}

std::string TokenServer::IssueToken(const std::string& user,
                                    const std::vector<std::string>& scopes) const {
  const std::vector<std::string>& granted = users_.at(user).actions;
  nlohmann::json access = nlohmann::json::array();
  for (const std::string& scope : scopes) {
    // "repository:NAME:ACTION,ACTION"
    const size_t first = scope.find(':');
    const size_t last = scope.rfind(':');
    if (first == std::string::npos || last == first) continue;
    nlohmann::json actions = nlohmann::json::array();
    std::istringstream wanted(scope.substr(last + 1));
    std::string action;
    while (std::getline(wanted, action, ',')) {
      if (std::find(granted.begin(), granted.end(), action) != granted.end()) {
        actions.push_back(action);
      }
    }
    access.push_back({{"type", scope.substr(0, first)},
                      {"name", scope.substr(first + 1, last - first - 1)},
                      {"actions", actions}});
  }
  const long now = static_cast<long>(std::chrono::duration_cast<std::chrono::seconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count());
  nlohmann::json header = {{"typ", "JWT"}, {"alg", "RS256"}, {"x5c", {cert_der_base64_}}};
  nlohmann::json claims = {
      {"iss", issuer_},
      {"sub", user},
      {"aud", service_},
      {"exp", now + 300},
      {"nbf", now - 10},
      {"iat", now},
      {"jti", std::to_string(now) + "-" + std::to_string(tokens_issued_.load())},
      {"access", access}};
  const std::string signing_input = Base64Url(header.dump()) + "." + Base64Url(claims.dump());

  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(key_pem_.data(), static_cast<int>(key_pem_.size())), &BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  size_t size = 0;
  if (!key || !ctx ||
      EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &size,
                     reinterpret_cast<const unsigned char*>(signing_input.data()),
                     signing_input.size()) != 1) {
    return "";
  }
  std::string signature(size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                     reinterpret_cast<const unsigned char*>(signing_input.data()),
                     signing_input.size()) != 1) {
    return "";
  }
  signature.resize(size);
  return signing_input + "." + Base64Url(signature);
}

}  // namespace manifold::test
