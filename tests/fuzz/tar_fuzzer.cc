// Fuzzes the build-context extractor (ExtractTar) with archives as a hostile client could
// upload them, writing for real under a private temporary directory. Beyond "no crash,
// no sanitizer report" it checks the promises tar.h makes: a refused archive leaves
// nothing behind, and an accepted one leaves nothing outside the destination and no
// symlink in it that leads outside.
#include <stdlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/tar.h"

namespace fs = std::filesystem;

namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "tar_fuzzer: %s\n", what.c_str());
  std::abort();
}

const fs::path& Root() {
  static const fs::path root = [] {
    std::string pattern = (fs::temp_directory_path() / "manifold-tar-fuzz-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) Fail("cannot create a temporary directory");
    std::atexit([] { fs::remove_all(Root()); });
    return fs::path(pattern);
  }();
  return root;
}

bool Inside(const fs::path& path, const fs::path& dir) {
  auto [d, p] = std::mismatch(dir.begin(), dir.end(), path.begin(), path.end());
  return d == dir.end();
}

// Archives may set directories to mode 0; the walks below and the clean-up need to enter
// them. A directory is made accessible when it is reached, before the walk descends.
void MakeAccessible(const fs::path& dest) {
  for (auto it = fs::recursive_directory_iterator(dest); it != fs::end(it); ++it) {
    if (it->is_directory() && !it->is_symlink()) {
      fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add);
    }
  }
}

void CheckExtracted(const fs::path& dest) {
  const fs::path real_dest = fs::canonical(dest);
  for (auto it = fs::recursive_directory_iterator(dest); it != fs::end(it); ++it) {
    if (!it->is_symlink()) continue;
    fs::path target = fs::read_symlink(it->path());
    fs::path resolved = fs::weakly_canonical(it->path().parent_path() / target);
    if (!Inside(resolved, real_dest)) {
      Fail("symlink " + it->path().string() + " -> " + target.string() + " leads outside");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fs::path dest = Root() / "dest";
  manifold::ExtractLimits limits;
  limits.max_total_bytes = 1 << 20;
  limits.max_entries = 1000;
  manifold::Status status = manifold::ExtractTar(
      std::string_view(reinterpret_cast<const char*>(data), size), dest.string(), limits);
  if (status.ok()) {
    MakeAccessible(dest);
    CheckExtracted(dest);
  } else {
    if (status.message().empty()) Fail("a refusal without a reason");
    if (status.code() == manifold::Status::Code::kInvalidArgument && fs::exists(dest)) {
      Fail("refused with \"" + status.message() + "\" but wrote " + dest.string());
    }
  }
  for (const fs::directory_entry& entry : fs::directory_iterator(Root())) {
    if (entry.path() != dest) Fail("wrote " + entry.path().string() + " outside the destination");
  }
  if (fs::exists(dest)) {
    if (!status.ok()) MakeAccessible(dest);  // an I/O failure part-way
    fs::remove_all(dest);
  }
  return 0;
}
