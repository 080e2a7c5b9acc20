// Where a build context's sources come from, read from git as buildx does, for the
// org.opencontainers.image.source and .revision annotations of the pushed index.
//
// Only the local git binary is asked (rev-parse, remote get-url, status); a context that
// is not inside a git work tree, a repository without commits or a host without git
// yields empty fields, never an error, because the annotations are a courtesy. Plain
// functions; thread-safe (each call runs its own git processes).
#pragma once

#include <string>

namespace manifold {

struct GitSource {
  std::string url;       // the origin remote without credentials; "" when there is none
  std::string revision;  // HEAD's commit, with "-dirty" when the work tree has changes
};

GitSource DetectGitSource(const std::string& context_dir);

}  // namespace manifold
