#include "cli/login.h"

#include <iterator>

#include "common/docker_config.h"

namespace manifold {

int RunLogin(const LoginOptions& options, std::istream* password_in, std::ostream* out,
             std::ostream* err) {
  auto fail = [err](const std::string& message) {
    *err << "manifold: login: " << message << "\n";
    err->flush();
    return 1;
  };
  // Accept what people paste: "https://host/", "host/".
  std::string registry = options.registry;
  for (const char* scheme : {"https://", "http://"}) {
    if (registry.rfind(scheme, 0) == 0) registry = registry.substr(std::string(scheme).size());
  }
  while (!registry.empty() && registry.back() == '/') registry.pop_back();
  if (registry.empty() || registry.find('/') != std::string::npos ||
      registry.find_first_of(" \t@") != std::string::npos) {
    return fail("\"" + options.registry + "\" is not a registry host (use HOST or HOST:PORT)");
  }
  if (options.username.empty()) return fail("a user name is required (-u USER)");

  std::string password((std::istreambuf_iterator<char>(*password_in)),
                       std::istreambuf_iterator<char>());
  while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) {
    password.pop_back();
  }
  if (password.empty()) return fail("no password on standard input (--password-stdin)");

  RegistryOptions registry_options = options.registry_options;
  registry_options.credentials = RegistryCredentials{options.username, password, ""};
  RegistryClient client(registry, registry_options);
  Status access = client.CheckAccess();
  if (!access.ok()) return fail(access.message());

  const std::string dir = options.config_dir.empty() ? DockerConfigDir() : options.config_dir;
  Status stored = StoreRegistryCredentials(dir, registry, options.username, password);
  if (!stored.ok()) return fail(stored.message());
  *out << "Login Succeeded\n";
  out->flush();
  return 0;
}

}  // namespace manifold
