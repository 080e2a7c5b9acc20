// DiskContextStore: the ContextStore of one coordinator, files in STATE_DIR/contexts named
// by their digest's hex (HEX.tar).
//
// A put writes a temporary file (.tmp.*) while hashing, then fsyncs it, renames it into
// place and fsyncs the directory, so after a crash a context is whole under its name or
// absent. A power loss can still leave a damaged file behind (a disk that lies, a file
// copied in by hand), so reads verify: the first use of a file in each process hashes it,
// and a file that does not hash to its name is deleted and reported missing. What was
// verified is remembered by inode, size and mtime, so a 1 GiB context is hashed once per
// process, not on every Has. A use sets the file's mtime, which is how its last use
// survives a restart for the collector. Temporary files left by a crash are removed at
// start once 15 minutes old (several coordinators may share the directory, README "Highly
// available", and another's upload may be under way). Thread-safe: one mutex orders a use's
// check-and-touch against the collector's check-and-delete; hashing runs outside it.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "coordinator/context_store.h"

namespace manifold {

class DiskContextStore final : public ContextStore {
 public:
  // Creates `state_dir`/contexts if needed and removes stale temporary files left there.
  static Result<std::unique_ptr<DiskContextStore>> Create(const std::string& state_dir);

  bool Has(std::string_view digest) override;
  Result<std::unique_ptr<ContextWriter>> Put() override;
  Result<std::unique_ptr<ContextReader>> Open(std::string_view digest) override;
  Result<ContextCollection> Collect(const ContextRetention& retention,
                                    const std::set<std::string>& needed) override;

  // The file a context with this (valid) digest is stored in.
  std::string FileFor(std::string_view digest) const;

  // One stored file's identity: it changes when the file is replaced, cut or touched.
  struct FileId {
    ino_t inode = 0;
    off_t size = 0;
    timespec mtime{};
    bool operator==(const FileId& other) const;
    // The same file under the name, though perhaps touched since: a use's touch must not
    // look like a replacement to another use of the same context.
    bool SameFileAs(const FileId& other) const {
      return inode == other.inode && size == other.size;
    }
  };

 private:
  class Writer;
  explicit DiskContextStore(std::string dir) : dir_(std::move(dir)) {}

  // An open descriptor of the intact file of `digest`, its mtime set to now.
  Result<int> OpenVerified(std::string_view digest);
  // The file of `digest`, verified as written: no need to hash it again.
  void Remember(std::string_view digest, const FileId& id);
  // Deletes the file of `digest` if it is still the file `id` describes (not replaced or
  // used since). Call with mutex_ held.
  bool DeleteIfUnchanged(std::string_view digest, const FileId& id);

  const std::string dir_;  // STATE_DIR/contexts
  std::mutex mutex_;
  std::map<std::string, FileId, std::less<>> verified_;  // by digest
  int deleted_corrupt_ = 0;                              // since the last Collect
};

}  // namespace manifold
