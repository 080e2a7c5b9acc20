#include "common/redact.h"

#include <gtest/gtest.h>

namespace manifold {
namespace {

TEST(RedactUrl, DropsUserinfoQueryAndFragment) {
  EXPECT_EQ(RedactUrl("http://127.0.0.1:7080/v1/contexts/sha256:ab?grant=0123abcd"),
            "http://127.0.0.1:7080/v1/contexts/sha256:ab");
  EXPECT_EQ(RedactUrl("https://user:token@github.com/org/repo.git"),
            "https://github.com/org/repo.git");
  EXPECT_EQ(RedactUrl("https://u:p@host:8443/a/b?X-Amz-Signature=s&x=1#frag"),
            "https://host:8443/a/b");
  EXPECT_EQ(RedactUrl("https://x-access-token@host:8443/a@b"), "https://host:8443/a@b");
  EXPECT_EQ(RedactUrl("https://user:p@ss@host?q=a/b@c"), "https://host");
  EXPECT_EQ(RedactUrl("ssh://git@host/repo"), "ssh://host/repo");
}

TEST(RedactUrl, KeepsWhatHoldsNoSecret) {
  EXPECT_EQ(RedactUrl("https://github.com/org/repo"), "https://github.com/org/repo");
  EXPECT_EQ(RedactUrl("git@github.com:org/repo.git"), "git@github.com:org/repo.git");
  EXPECT_EQ(RedactUrl(""), "");
}

}  // namespace
}  // namespace manifold
