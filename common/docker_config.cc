#include "common/docker_config.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

namespace manifold {
namespace {

constexpr std::string_view kDockerHubKey = "https://index.docker.io/v1/";

bool IsDockerHub(std::string_view registry) {
  return registry == "docker.io" || registry == "index.docker.io" ||
         registry == "registry-1.docker.io";
}

// Reads a whole file; nullopt when it does not exist, an error when it cannot be read.
Result<std::optional<std::string>> ReadIfExists(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return std::optional<std::string>();
    return Status::FailedPrecondition("cannot read " + path + ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return std::optional<std::string>(text.str());
}

}  // namespace

std::string DockerConfigDir(const std::function<const char*(const char*)>& getenv) {
  const char* dir = getenv("DOCKER_CONFIG");
  if (dir != nullptr && dir[0] != '\0') return dir;
  const char* home = getenv("HOME");
  if (home != nullptr && home[0] != '\0') return std::string(home) + "/.docker";
  return "";
}

std::string DockerConfigKey(std::string_view registry) {
  return IsDockerHub(registry) ? std::string(kDockerHubKey) : std::string(registry);
}

std::string Base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out(3 * (text.size() / 4) + 1, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding as zero bytes; drop them.
  size_t size = static_cast<size_t>(n);
  for (size_t i = text.size(); i > 0 && text[i - 1] == '=' && size > 0; --i) --size;
  out.resize(size);
  return out;
}

Result<std::optional<RegistryCredentials>> LoadRegistryCredentials(const std::string& config_dir,
                                                                   std::string_view registry) {
  using Found = std::optional<RegistryCredentials>;
  if (config_dir.empty()) return Found();
  const std::string path = config_dir + "/config.json";
  Result<std::optional<std::string>> text = ReadIfExists(path);
  if (!text.ok()) return text.status();
  if (!text->has_value()) return Found();
  nlohmann::json config = nlohmann::json::parse(**text, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded() || !config.is_object()) {
    return Status::FailedPrecondition(path +
                                      " is not a JSON object; fix or remove it, then run "
                                      "`manifold login` again");
  }
  const std::string host(registry);
  std::vector<std::string> keys = {DockerConfigKey(registry), "https://" + host, "http://" + host,
                                   "https://" + host + "/v1/", "https://" + host + "/v2/"};
  if (config.contains("auths") && config["auths"].is_object()) {
    const nlohmann::json& auths = config["auths"];
    for (const std::string& key : keys) {
      auto it = auths.find(key);
      if (it == auths.end() || !it->is_object()) continue;
      RegistryCredentials creds;
      if (it->contains("identitytoken") && (*it)["identitytoken"].is_string() &&
          !(*it)["identitytoken"].get<std::string>().empty()) {
        creds.identity_token = (*it)["identitytoken"].get<std::string>();
      }
      if (it->contains("auth") && (*it)["auth"].is_string() &&
          !(*it)["auth"].get<std::string>().empty()) {
        std::optional<std::string> decoded = Base64Decode((*it)["auth"].get<std::string>());
        size_t colon = decoded ? decoded->find(':') : std::string::npos;
        if (colon == std::string::npos) {
          // Never quote the value: it is a secret.
          return Status::FailedPrecondition(
              path + ": the \"auth\" entry for " + key +
              " is not base64 of \"user:password\"; run `manifold login " + host + "` again");
        }
        creds.username = decoded->substr(0, colon);
        creds.password = decoded->substr(colon + 1);
      } else if (it->contains("username") && (*it)["username"].is_string() &&
                 it->contains("password") && (*it)["password"].is_string()) {
        creds.username = (*it)["username"].get<std::string>();
        creds.password = (*it)["password"].get<std::string>();
      }
      if (!creds.username.empty() || !creds.identity_token.empty()) return Found(creds);
    }
  }
  std::string helper;
  if (config.contains("credHelpers") && config["credHelpers"].is_object()) {
    for (const std::string& key : keys) {
      auto it = config["credHelpers"].find(key);
      if (it != config["credHelpers"].end() && it->is_string()) helper = it->get<std::string>();
    }
  }
  if (helper.empty() && config.contains("credsStore") && config["credsStore"].is_string()) {
    helper = config["credsStore"].get<std::string>();
  }
  if (!helper.empty()) {
    return Status::FailedPrecondition(
        path + " keeps the credentials for " + host + " in the credential helper \"docker-" +
        "credential-" + helper + "\", which manifold does not run; run `manifold login " + host +
        " -u USER --password-stdin` with DOCKER_CONFIG pointing at a directory whose "
        "config.json has no credsStore/credHelpers entry for this registry");
  }
  return Found();
}

Status StoreRegistryCredentials(const std::string& config_dir, std::string_view registry,
                                std::string_view username, std::string_view password) {
  if (config_dir.empty()) {
    return Status::FailedPrecondition(
        "no docker config directory: set DOCKER_CONFIG or HOME so that credentials can be "
        "stored");
  }
  if (username.empty() || username.find(':') != std::string_view::npos) {
    return Status::InvalidArgument("the user name must be non-empty and contain no ':'");
  }
  std::error_code ec;
  std::filesystem::create_directories(config_dir, ec);
  if (ec) return Status::FailedPrecondition("cannot create " + config_dir + ": " + ec.message());
  const std::string path = config_dir + "/config.json";
  Result<std::optional<std::string>> text = ReadIfExists(path);
  if (!text.ok()) return text.status();
  nlohmann::json config = nlohmann::json::object();
  if (text->has_value() && !(*text)->empty()) {
    config = nlohmann::json::parse(**text, nullptr, /*allow_exceptions=*/false);
    if (config.is_discarded() || !config.is_object()) {
      return Status::FailedPrecondition(path +
                                        " is not a JSON object; fix or remove it before "
                                        "logging in");
    }
  }
  if (!config.contains("auths") || !config["auths"].is_object()) {
    config["auths"] = nlohmann::json::object();
  }
  const std::string userpass = std::string(username) + ":" + std::string(password);
  config["auths"][DockerConfigKey(registry)] = {{"auth", Base64Encode(userpass)}};
  const std::string body = config.dump(1, '\t') + "\n";

  // Write a private temporary file and rename it over the old one, so a reader never sees
  // half a file and the secret is never readable by others, not even for a moment.
  const std::string tmp = path + ".tmp-" + std::to_string(getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return Status::FailedPrecondition("cannot write " + tmp + ": " + std::strerror(errno));
  size_t written = 0;
  while (written < body.size()) {
    ssize_t n = ::write(fd, body.data() + written, body.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string reason = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status::FailedPrecondition("cannot write " + tmp + ": " + reason);
    }
    written += static_cast<size_t>(n);
  }
  // fchmod: a umask cannot have widened it, but an existing temp file could have been.
  bool ok = ::fchmod(fd, 0600) == 0 && ::fsync(fd) == 0;
  std::string reason = ok ? "" : std::strerror(errno);
  if (::close(fd) != 0 && ok) {
    ok = false;
    reason = std::strerror(errno);
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    return Status::FailedPrecondition("cannot write " + tmp + ": " + reason);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string reason = std::strerror(errno);
    ::unlink(tmp.c_str());
    return Status::FailedPrecondition("cannot replace " + path + ": " + reason);
  }
  return Status::Ok();
}

}  // namespace manifold
