#include "common/reference.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <string>
#include <vector>

#include "common/digest.h"

namespace manifold {
namespace {

constexpr std::string_view kDockerHub = "docker.io";
constexpr size_t kMaxNameLength = 255;
constexpr size_t kMaxTagLength = 128;

std::string Quote(std::string_view text) { return "\"" + std::string(text) + "\""; }

Status InvalidReference(std::string_view input, const std::string& reason) {
  return Status::InvalidArgument("invalid image reference " + Quote(input) + ": " + reason +
                                 "; expected [registry/]repository[:tag][@digest], e.g. "
                                 "\"127.0.0.1:5000/team/app:1.2\"");
}

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
// std::isalnum follows the locale; manifold never sets one, so in its "C" locale this is
// ASCII letters and digits, which is what the grammar means.
bool IsLocaleAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool IsWordChar(char c) { return IsLocaleAlnum(c) || c == '_'; }
bool IsDigits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  while (true) {
    size_t at = text.find(separator);
    parts.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return parts;
    text.remove_prefix(at + 1);
  }
}

// path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | "__" | "-"+
bool IsValidPathComponent(std::string_view component) {
  if (component.empty() || !IsLowerAlnum(component.front()) || !IsLowerAlnum(component.back())) {
    return false;
  }
  size_t i = 0;
  while (i < component.size()) {
    if (IsLowerAlnum(component[i])) {
      ++i;
      continue;
    }
    size_t run_end = i;
    while (run_end < component.size() && !IsLowerAlnum(component[run_end])) ++run_end;
    std::string_view run = component.substr(i, run_end - i);
    bool dashes = std::all_of(run.begin(), run.end(), [](char c) { return c == '-'; });
    if (!(run == "." || run == "_" || run == "__" || dashes)) return false;
    i = run_end;
  }
  return true;
}

// domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
bool IsValidDomainComponent(std::string_view component) {
  if (component.empty() || !IsLocaleAlnum(component.front()) || !IsLocaleAlnum(component.back())) {
    return false;
  }
  return std::all_of(component.begin(), component.end(),
                     [](char c) { return IsLocaleAlnum(c) || c == '-'; });
}

struct HostPort {
  std::string_view host;  // without brackets for IPv6 literals
  bool bracketed = false;
  std::string_view port;  // "" when absent
};

// Splits "host[:port]" or "[ipv6][:port]"; false when the port part is malformed.
bool SplitHostPort(std::string_view registry, HostPort* out) {
  std::string_view rest;
  if (!registry.empty() && registry.front() == '[') {
    size_t close = registry.find(']');
    if (close == std::string_view::npos) return false;
    out->host = registry.substr(1, close - 1);
    out->bracketed = true;
    rest = registry.substr(close + 1);
  } else {
    size_t colon = registry.find(':');
    out->host = registry.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view() : registry.substr(colon);
  }
  if (rest.empty()) return true;
  if (rest.front() != ':' || !IsDigits(rest.substr(1)) || rest.size() > 6) return false;
  out->port = rest.substr(1);
  return std::stoul(std::string(out->port)) <= 65535;
}

bool IsIPv6Literal(std::string_view host, in6_addr* address) {
  return inet_pton(AF_INET6, std::string(host).c_str(), address) == 1;
}

Status ValidateRegistry(std::string_view input, std::string_view registry) {
  HostPort parts;
  if (!SplitHostPort(registry, &parts)) {
    return InvalidReference(
        input, "registry " + Quote(registry) + " has a malformed port (expected host:1-65535)");
  }
  if (parts.bracketed) {
    in6_addr address;
    if (IsIPv6Literal(parts.host, &address)) return Status::Ok();
    return InvalidReference(
        input, "registry " + Quote(registry) + " is not a valid bracketed IPv6 address");
  }
  for (std::string_view component : Split(parts.host, '.')) {
    if (!IsValidDomainComponent(component)) {
      return InvalidReference(input, "registry host " + Quote(parts.host) +
                                         " is not a valid host name (letters, digits and "
                                         "inner '-', joined by '.')");
    }
  }
  return Status::Ok();
}

// Why `repository` breaks the path grammar, or nullopt when it follows it.
std::optional<std::string> RepositoryGrammarError(std::string_view repository) {
  for (std::string_view component : Split(repository, '/')) {
    if (component.empty()) {
      return "the repository has an empty path component ('//', or '/' at the start or end)";
    }
    if (std::any_of(component.begin(), component.end(),
                    [](char c) { return c >= 'A' && c <= 'Z'; })) {
      return "repository names must be lowercase, but " + Quote(component) + " is not";
    }
    if (!IsValidPathComponent(component)) {
      return "path component " + Quote(component) +
             " may contain only a-z and 0-9, with single '.', '_', '__' or runs of '-' "
             "between them";
    }
  }
  return std::nullopt;
}

// Docker's rule: the first component names a registry only if it looks like a host.
bool LooksLikeRegistry(std::string_view component) {
  return component == "localhost" || component.find_first_of(".:") != std::string_view::npos;
}

}  // namespace

std::string Reference::Name() const { return registry + "/" + repository; }

std::string Reference::ToString() const {
  std::string out = Name();
  if (!tag.empty()) out += ":" + tag;
  if (!digest.empty()) out += "@" + digest;
  return out;
}

Result<Reference> ParseReference(std::string_view text) {
  if (text.empty()) return InvalidReference(text, "it is empty");
  Reference ref;

  std::string_view name = text;
  size_t at = name.find('@');
  if (at != std::string_view::npos) {
    std::string_view digest = name.substr(at + 1);
    if (!IsValidDigest(digest)) {
      return InvalidReference(text, "digest " + Quote(digest) +
                                        " is not \"sha256:\" followed by 64 lowercase hex "
                                        "digits");
    }
    ref.digest = std::string(digest);
    name = name.substr(0, at);
  }

  // A ':' after the last '/' starts the tag; earlier ones belong to a registry port.
  size_t last_slash = name.rfind('/');
  size_t colon = name.find(':', last_slash == std::string_view::npos ? 0 : last_slash);
  if (colon != std::string_view::npos) {
    std::string_view tag = name.substr(colon + 1);
    if (tag.empty()) return InvalidReference(text, "the tag after ':' is empty");
    if (!IsValidTag(tag)) {
      return InvalidReference(text, "tag " + Quote(tag) +
                                        " must start with a letter, digit or '_', continue "
                                        "with those or '.' and '-', and be at most 128 "
                                        "characters");
    }
    ref.tag = std::string(tag);
    name = name.substr(0, colon);
  }
  if (name.empty()) return InvalidReference(text, "the repository name is empty");

  size_t first_slash = name.find('/');
  std::string_view repository = name;
  if (first_slash != std::string_view::npos && LooksLikeRegistry(name.substr(0, first_slash))) {
    std::string_view registry = name.substr(0, first_slash);
    if (Status s = ValidateRegistry(text, registry); !s.ok()) return s;
    ref.registry = std::string(registry);
    repository = name.substr(first_slash + 1);
  } else {
    ref.registry = std::string(kDockerHub);
  }
  if (std::optional<std::string> why = RepositoryGrammarError(repository); why.has_value()) {
    return InvalidReference(text, *why);
  }
  ref.repository = std::string(repository);
  if (ref.registry == "index.docker.io") ref.registry = std::string(kDockerHub);
  if (ref.registry == kDockerHub && ref.repository.find('/') == std::string::npos) {
    ref.repository = "library/" + ref.repository;
  }

  if (ref.Name().size() > kMaxNameLength) {
    return InvalidReference(text, "the name " + Quote(ref.Name()) + " is " +
                                      std::to_string(ref.Name().size()) +
                                      " characters long; the limit is 255");
  }
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = "latest";
  return ref;
}

Status ValidateRepositoryName(std::string_view repository) {
  std::optional<std::string> why;
  if (repository.empty()) {
    why = "it is empty";
  } else if (repository.size() > kMaxNameLength) {
    why = "it is " + std::to_string(repository.size()) + " characters long; the limit is 255";
  } else {
    why = RepositoryGrammarError(repository);
  }
  if (!why.has_value()) return Status::Ok();
  return Status::InvalidArgument("invalid repository name " + Quote(repository) + ": " + *why);
}

bool IsValidTag(std::string_view tag) {
  if (tag.empty() || tag.size() > kMaxTagLength || !IsWordChar(tag.front())) return false;
  return std::all_of(tag.begin(), tag.end(),
                     [](char c) { return IsWordChar(c) || c == '.' || c == '-'; });
}

bool IsLoopbackRegistry(std::string_view registry) {
  HostPort parts;
  if (!SplitHostPort(registry, &parts)) return false;
  std::string host(parts.host);
  if (parts.bracketed) {
    in6_addr address;
    return IsIPv6Literal(host, &address) && IN6_IS_ADDR_LOOPBACK(&address);
  }
  std::transform(host.begin(), host.end(), host.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (host == "localhost") return true;
  in_addr address;
  return inet_pton(AF_INET, host.c_str(), &address) == 1 && (ntohl(address.s_addr) >> 24) == 127;
}

}  // namespace manifold
