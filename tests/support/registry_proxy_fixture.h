// RegistryProxyFixture: a gtest fixture with a real registry, a RegistryProxy in front of
// it (registry_proxy.h) and a client straight to the registry, for tests of what
// manifold's registry client and merge do when something in between answers in the
// registry's stead. Each test has its own registry, proxy and temp dir; header-only, for
// integration tests (SucceededJob needs the coordinator's records). Not thread-safe: a
// test uses it from its own thread.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "common/registry.h"
#include "coordinator/build.h"
#include "tests/support/registry_proxy.h"
#include "tests/support/registry_server.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_image.h"

namespace manifold::test {

inline bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// How many of `requests` were `method` with `target_contains` in their target.
inline int Count(const std::vector<ProxiedRequest>& requests, const std::string& method,
                 const std::string& target_contains = "") {
  int n = 0;
  for (const ProxiedRequest& r : requests) {
    if (r.method == method && Contains(r.target, target_contains)) ++n;
  }
  return n;
}

// A succeeded job whose agent reported `image`, as the merge reads it.
inline JobRecord SucceededJob(const TestImage& image) {
  JobRecord job;
  job.platform = image.platform;
  job.state = "succeeded";
  job.manifest = {image.manifest.media_type, image.manifest.digest,
                  static_cast<uint64_t>(image.manifest.size)};
  return job;
}

class RegistryProxyFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    Status s = registry_.Start();
    ASSERT_TRUE(s.ok()) << s.message();
    s = proxy_.Start(registry_.host());
    ASSERT_TRUE(s.ok()) << s.message();
    direct_ = std::make_unique<RegistryClient>(registry_.host(), Options());
  }

  // Client options that read no credentials or certificates of the machine's.
  RegistryOptions Options() {
    RegistryOptions options;
    options.docker_config_dir = tmp_.path();
    options.certs_dir = tmp_.path() + "/certs.d";
    return options;
  }

  bool Tagged(const std::string& repo, const std::string& tag) {
    return direct_->GetManifest(repo, tag).ok();
  }

  TempDir tmp_;
  RegistryServer registry_;
  RegistryProxy proxy_;
  std::unique_ptr<RegistryClient> direct_;
};

}  // namespace manifold::test
