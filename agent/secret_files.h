// SecretFiles: a job's build secrets as files the builder can mount, for as long as the
// build runs.
//
// buildah and docker take a secret as `--secret id=ID,src=FILE`, so the bytes the
// coordinator sent must sit in a file while the build runs. They go into a fresh directory
// of mode 0700 (files 0600) on a memory file system when the host has one (/dev/shm), so
// they never reach a disk, and the destructor overwrites and removes them: nothing of a
// secret outlives its build. File names are numbers, not the ids the network sent. Not
// thread-safe; one per job.
#pragma once

#include <map>
#include <string>

#include "common/status.h"

namespace manifold {

class SecretFiles {
 public:
  // Writes each secret (id -> bytes) into a new private directory under parent_dir, or
  // under fallback_dir when parent_dir does not exist. Writes nothing for no secrets.
  static Result<SecretFiles> Write(const std::map<std::string, std::string>& secrets,
                                   const std::string& parent_dir, const std::string& fallback_dir);

  SecretFiles() = default;
  SecretFiles(SecretFiles&& other) noexcept;
  SecretFiles& operator=(SecretFiles&& other) noexcept;
  SecretFiles(const SecretFiles&) = delete;
  SecretFiles& operator=(const SecretFiles&) = delete;
  ~SecretFiles();

  // id -> the file holding its bytes.
  const std::map<std::string, std::string>& files() const { return files_; }
  // The private directory; "" when there are no secrets.
  const std::string& dir() const { return dir_; }

 private:
  void Erase();

  std::string dir_;
  std::map<std::string, std::string> files_;
};

}  // namespace manifold
