#include "coordinator/context_store.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "common/digest.h"

namespace manifold {

namespace fs = std::filesystem;

Result<ContextStore> ContextStore::Open(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(fs::path(dir) / "contexts", ec);
  if (ec) return Status::Internal("cannot create state directory " + dir + ": " + ec.message());
  return ContextStore(dir);
}

std::string ContextStore::FileFor(std::string_view digest) const {
  return (fs::path(dir_) / "contexts" / (DigestHex(digest) + ".tar")).string();
}

bool ContextStore::Has(std::string_view digest) const {
  return IsValidDigest(digest) && fs::exists(FileFor(digest));
}

Status ContextStore::Put(std::string_view digest, std::string_view body) const {
  if (!IsValidDigest(digest)) {
    return Status::InvalidArgument("\"" + std::string(digest) + "\" is not a sha256 digest");
  }
  std::string actual = Sha256Digest(body);
  if (actual != digest) {
    return Status::InvalidArgument("the uploaded context's digest is " + actual + ", not " +
                                   std::string(digest) + "; upload it again");
  }
  static std::atomic<uint64_t> counter{0};
  std::string final_path = FileFor(digest);
  std::string temp_path =
      final_path + ".tmp." + std::to_string(getpid()) + "." + std::to_string(counter.fetch_add(1));
  {
    std::ofstream out(temp_path, std::ios::binary | std::ios::trunc);
    out.write(body.data(), static_cast<std::streamsize>(body.size()));
    out.flush();
    if (!out) {
      std::error_code ignored;
      fs::remove(temp_path, ignored);
      return Status::Internal("cannot write context to " + temp_path + " (disk full?)");
    }
  }
  std::error_code ec;
  fs::rename(temp_path, final_path, ec);
  if (ec) {
    fs::remove(temp_path, ec);
    return Status::Internal("cannot store context " + final_path + ": " + ec.message());
  }
  return Status::Ok();
}

Result<std::string> ContextStore::Path(std::string_view digest) const {
  if (!Has(digest)) {
    return Status::NotFound("no context " + std::string(digest) + " on the coordinator");
  }
  return FileFor(digest);
}

}  // namespace manifold
