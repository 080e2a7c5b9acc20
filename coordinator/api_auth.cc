#include "coordinator/api_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <regex>

#include "common/digest.h"

namespace manifold {
namespace {

std::string Hex(const unsigned char* bytes, size_t size) {
  static const char kDigits[] = "0123456789abcdef";
  std::string text;
  for (size_t i = 0; i < size; ++i) {
    text += kDigits[bytes[i] >> 4];
    text += kDigits[bytes[i] & 15];
  }
  return text;
}

Result<std::string> RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    return Status::Internal("the system's random number generator failed");
  }
  return Hex(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
}

bool ConstantTimeEqual(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

const char kTokenHelp[] =
    "send \"Authorization: Bearer TOKEN\" (the CLI: MANIFOLD_TOKEN or --token); an operator "
    "makes tokens with `manifold-coordinator token create --name NAME`";

}  // namespace

Result<NewApiToken> MakeApiToken() {
  Result<std::string> id = RandomHex(8);
  Result<std::string> secret = RandomHex(32);
  if (!id.ok()) return id.status();
  if (!secret.ok()) return secret.status();
  NewApiToken token;
  token.id = *id;
  token.token = "mf_" + *id + "_" + *secret;
  token.hash = DigestHex(Sha256Digest(token.token));
  return token;
}

Result<std::string> SharedContextGrantKey(Store& store) {
  Result<std::string> fresh = RandomHex(32);
  if (!fresh.ok()) return fresh.status();
  return store.ContextGrantKey(*fresh);
}

ApiAuth::ApiAuth(Store& store, ApiAuthOptions options, std::string grant_key)
    : store_(store), options_(options), grant_key_(std::move(grant_key)) {}

std::string ApiAuth::Grant(const std::string& digest) const {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), grant_key_.data(), static_cast<int>(grant_key_.size()),
       reinterpret_cast<const unsigned char*>(digest.data()), digest.size(), mac, &size);
  return Hex(mac, size);
}

std::string ApiAuth::ContextUrlQuery(const std::string& digest) const {
  return "?grant=" + Grant(digest);
}

ApiAuth::Decision ApiAuth::CheckToken(const std::string& token) const {
  static const std::regex kToken("mf_([0-9a-f]{16})_[0-9a-f]{64}");
  std::smatch match;
  if (!std::regex_match(token, match, kToken)) {
    return {401, std::string("the bearer token is not a manifold API token; ") + kTokenHelp};
  }
  Result<std::optional<std::string>> stored = store_.ApiTokenHash(match[1].str());
  if (!stored.ok()) {
    return {503, "cannot check the API token: " + stored.status().message()};
  }
  if (!stored->has_value() || !ConstantTimeEqual(**stored, DigestHex(Sha256Digest(token)))) {
    return {401, std::string("the API token is unknown or revoked; ") + kTokenHelp};
  }
  return {};
}

ApiAuth::Decision ApiAuth::Check(const std::string& method, const std::string& path,
                                 const std::string& authorization_header,
                                 const std::string& query_grant) const {
  if (!options_.required) return {};
  if (options_.open_probes && (path == "/healthz" || path == "/readyz")) return {};
  static const std::string kContexts = "/v1/contexts/";
  if ((method == "GET" || method == "HEAD") && !query_grant.empty() &&
      path.starts_with(kContexts)) {
    if (ConstantTimeEqual(query_grant, Grant(path.substr(kContexts.size())))) return {};
    return {401, "the context grant does not match this context"};
  }
  static const std::string kBearer = "Bearer ";
  if (authorization_header.empty()) {
    return {401, std::string("this API requires a token; ") + kTokenHelp};
  }
  if (!authorization_header.starts_with(kBearer)) {
    return {401, std::string("only Bearer authorization is accepted; ") + kTokenHelp};
  }
  return CheckToken(authorization_header.substr(kBearer.size()));
}

}  // namespace manifold
