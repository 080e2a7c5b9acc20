#include "common/registry_auth.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>
#include <utility>

#include "common/redact.h"
#include "common/registry_errors.h"
#include "common/strings.h"

namespace manifold {
namespace {

// A parsed WWW-Authenticate challenge: `Bearer realm="...",service="...",scope="..."`.
struct Challenge {
  std::string scheme;  // lowercased: "basic", "bearer"
  std::map<std::string, std::string> params;
};

Challenge ParseChallenge(std::string_view text) {
  Challenge out;
  size_t i = 0;
  while (i < text.size() && text[i] == ' ') ++i;
  size_t scheme_end = text.find(' ', i);
  std::string_view scheme = text.substr(
      i, scheme_end == std::string_view::npos ? std::string_view::npos : scheme_end - i);
  for (char c : scheme) {
    out.scheme.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  }
  if (scheme_end == std::string_view::npos) return out;
  i = scheme_end;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == ',')) ++i;
    size_t eq = text.find('=', i);
    if (eq == std::string_view::npos) break;
    std::string key(text.substr(i, eq - i));
    for (char& c : key) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    i = eq + 1;
    std::string value;
    if (i < text.size() && text[i] == '"') {
      ++i;
      while (i < text.size() && text[i] != '"') {
        if (text[i] == '\\' && i + 1 < text.size()) ++i;
        value.push_back(text[i++]);
      }
      ++i;  // closing quote
    } else {
      while (i < text.size() && text[i] != ',') value.push_back(text[i++]);
    }
    out.params[key] = value;
  }
  return out;
}

}  // namespace

std::string PullScope(const std::string& repo) { return "repository:" + repo + ":pull"; }
std::string PushScope(const std::string& repo) { return "repository:" + repo + ":pull,push"; }

RegistryAuth::RegistryAuth(std::string host, const std::optional<RegistryCredentials>& credentials,
                           const std::optional<std::string>& docker_config_dir)
    : host_(std::move(host)) {
  if (credentials.has_value()) {
    credentials_ = credentials;
    credentials_source_ = "the credentials given to manifold";
  } else {
    const std::string dir = docker_config_dir.value_or(DockerConfigDir());
    credentials_source_ = dir + "/config.json";
    Result<std::optional<RegistryCredentials>> loaded = LoadRegistryCredentials(dir, host_);
    if (loaded.ok()) {
      credentials_ = *loaded;
    } else {
      credentials_status_ = loaded.status();
    }
  }
}

std::optional<std::string> RegistryAuth::Authorization(const std::string& scope_key) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (basic_ && credentials_.has_value() && !credentials_->username.empty()) {
    return "Basic " + Base64Encode(credentials_->username + ":" + credentials_->password);
  }
  auto it = tokens_.find(scope_key);
  if (it == tokens_.end() || it->second.expires <= std::chrono::steady_clock::now()) {
    return std::nullopt;
  }
  return it->second.header;
}

Status RegistryAuth::AnswerChallenge(const std::string& challenge_text,
                                     const std::vector<std::string>& scopes,
                                     const std::string& operation, const TokenSender& send) const {
  const std::string context = "registry " + host_ + ": " + operation;
  if (!credentials_status_.ok()) return credentials_status_.WithContext(context);
  const Challenge challenge = ParseChallenge(challenge_text);
  const bool have_password = credentials_.has_value() && !credentials_->username.empty() &&
                             credentials_->identity_token.empty();
  const std::string login_hint =
      "log in with `manifold login " + host_ + " -u USER --password-stdin` (or docker login)";
  const bool have_identity_token =
      credentials_.has_value() && !credentials_->identity_token.empty();
  if (challenge.scheme == "basic") {
    if (!have_password) {
      return Status::FailedPrecondition(
          context + ": the registry requires a user name and password (HTTP 401, Basic) and " +
          (have_identity_token
               ? "only an identity token (usable with token auth only) is in " + credentials_source_
               : std::string("none is configured")) +
          "; " + login_hint);
    }
    std::lock_guard<std::mutex> lock(mu_);
    basic_ = true;
    return Status::Ok();
  }
  if (challenge.scheme != "bearer") {
    return Status::FailedPrecondition(context + ": the registry asks for authentication \"" +
                                      challenge_text +
                                      "\", which manifold does not support (only Basic and "
                                      "Bearer token auth)");
  }
  auto realm = challenge.params.find("realm");
  if (realm == challenge.params.end() || realm->second.empty()) {
    return Status::FailedPrecondition(context + ": the Bearer challenge \"" + challenge_text +
                                      "\" names no realm to ask for a token");
  }
  // The scopes this operation needs plus any the registry named, asked for in one token.
  std::vector<std::string> wanted = scopes;
  auto scope = challenge.params.find("scope");
  if (scope != challenge.params.end() && !scope->second.empty()) {
    std::istringstream split(scope->second);
    std::string one;
    while (split >> one) {
      if (std::find(wanted.begin(), wanted.end(), one) == wanted.end()) wanted.push_back(one);
    }
  }
  HttpRequest request;
  auto service = challenge.params.find("service");
  const std::string service_param =
      service != challenge.params.end() ? "service=" + UrlEncode(service->second) : "";
  if (have_identity_token) {
    // An identity token is an OAuth2 refresh token, exchanged by a form POST for an
    // access token (the spec's OAuth2 flow, as docker does): scopes space-separated in
    // one field there, where the GET flow repeats the parameter.
    request.method = "POST";
    request.url = realm->second;
    request.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
    request.body = "grant_type=refresh_token&client_id=manifold&refresh_token=" +
                   UrlEncode(credentials_->identity_token) +
                   (service_param.empty() ? "" : "&" + service_param) +
                   (wanted.empty() ? "" : "&scope=" + UrlEncode(Join(wanted, " ")));
  } else {
    std::string query = service_param;
    for (const std::string& s : wanted)
      query += std::string(query.empty() ? "" : "&") + "scope=" + UrlEncode(s);
    request.url =
        realm->second + (realm->second.find('?') == std::string::npos ? "?" : "&") + query;
    if (have_password) {
      request.headers.emplace_back(
          "Authorization",
          "Basic " + Base64Encode(credentials_->username + ":" + credentials_->password));
    }
  }
  request.max_body_bytes = size_t{1} << 20;
  const std::string token_server = RedactUrl(realm->second);
  const std::string token_op =
      context + ": get a token from " + token_server + " for " + Join(wanted, " ");
  Result<HttpResponse> response = send(std::move(request));
  if (!response.ok()) return response.status().WithContext(token_op);
  if (response->status == 401 || response->status == 403) {
    std::string why;
    if (have_identity_token) {
      why = "the identity token for " + host_ + " in " + credentials_source_ +
            " was refused (expired or revoked?); log in again with `docker login " + host_ +
            "`, or replace it with a password: `manifold login " + host_ +
            " -u USER --password-stdin`";
    } else if (credentials_.has_value()) {
      why = "the credentials configured for " + host_ +
            " were refused (wrong user name or password?); " + login_hint;
    } else {
      why = "no credentials are configured for " + host_ + "; " + login_hint;
    }
    return Status::FailedPrecondition(token_op + ": HTTP " + std::to_string(response->status) +
                                      ": " + DescribeRegistryBody(response->body) + "; " + why);
  }
  if (response->status != 200) {
    Status s = RegistryHttpError(host_, "get a token from " + token_server, *response);
    return s.WithContext(context);
  }
  nlohmann::json j = nlohmann::json::parse(response->body, nullptr, false);
  std::string token;
  if (!j.is_discarded() && j.is_object()) {
    if (j.contains("token") && j["token"].is_string()) token = j["token"].get<std::string>();
    if (token.empty() && j.contains("access_token") && j["access_token"].is_string()) {
      token = j["access_token"].get<std::string>();
    }
  }
  if (token.empty()) {
    // Only the field names: the answer is a credential's container, whatever it calls it.
    std::vector<std::string> fields;
    if (j.is_object()) {
      for (const auto& item : j.items()) fields.push_back(item.key());
    }
    return Status::Internal(token_op + ": the answer holds no \"token\" or \"access_token\" (" +
                            (j.is_object() ? "its fields: " + Join(fields, ", ")
                                           : std::string("it is not a JSON object")) +
                            ")");
  }
  // Tokens live 60 s unless the server says otherwise; renew 10 s early so a token never
  // expires between the check and the request.
  long lifetime = 60;
  if (j.contains("expires_in") && j["expires_in"].is_number_integer()) {
    lifetime = std::max<long>(j["expires_in"].get<long>(), 0);
  }
  const auto expires = std::chrono::steady_clock::now() +
                       std::chrono::seconds(std::max<long>(lifetime - 10, lifetime / 2));
  std::lock_guard<std::mutex> lock(mu_);
  tokens_[Join(scopes, " ")] = Token{"Bearer " + token, expires};
  return Status::Ok();
}

Status RegistryAuth::RefusedAfterAuthenticating(const HttpResponse& response,
                                                const std::vector<std::string>& scopes,
                                                const std::string& context) const {
  // Wrong credentials, or the token lacks a scope because the account lacks a right.
  const Challenge parsed = ParseChallenge(response.Header("www-authenticate"));
  auto error = parsed.params.find("error");
  std::string who = "anonymous access";
  if (credentials_.has_value() && !credentials_->identity_token.empty()) {
    who = "the identity token in " + credentials_source_;
  } else if (credentials_.has_value() && !credentials_->username.empty()) {
    who = "the user \"" + credentials_->username + "\"";
  }
  bool basic;
  {
    std::lock_guard<std::mutex> lock(mu_);
    basic = basic_;
  }
  std::string why;
  if (basic || scopes.empty()) {
    why = "the registry refused the credentials of " + who +
          " (wrong user name or password?); log in again with `manifold login " + host_ +
          " -u USER --password-stdin`";
  } else {
    why = "the registry's token for " + who + " does not grant " + Join(scopes, " ") +
          " (error: " + (error != parsed.params.end() ? error->second : "none given") +
          "); give that account these rights on the repository (e.g. push), or log in as " +
          "another user with `manifold login " + host_ + "`";
  }
  return Status::FailedPrecondition(context + ": HTTP 401 after authenticating: " +
                                    DescribeRegistryBody(response.body) + "; " + why);
}

}  // namespace manifold
