// TempDir: a fresh directory for one test, removed with everything in it at the end.
//
// Tests that write files (layouts, registry storage, logs) each get their own directory
// under $TMPDIR (or /tmp), so parallel and repeated runs never see each other's files.
// Not thread-safe to destroy while another thread still writes into it.
#pragma once

#include <string>
#include <string_view>

namespace manifold::test {

class TempDir {
 public:
  // Creates <$TMPDIR or /tmp>/<prefix>-XXXXXX; throws std::runtime_error when it cannot,
  // which GoogleTest reports as a failure of the test that asked.
  explicit TempDir(std::string_view prefix = "manifold-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace manifold::test
