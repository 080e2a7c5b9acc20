// Where a build context's sources come from, read from git as buildx does, for the
// org.opencontainers.image.source and .revision annotations of the pushed index.
//
// Only the local git binary is asked (rev-parse, remote get-url, status); a context that
// is not inside a git work tree, a repository without commits or a host without git
// yields empty fields, never an error, because the annotations are a courtesy. The source
// is a URL a person can open or clone, never a path on the building host; the revision is
// "-dirty" only when what is built (the context directory and the Dockerfile) differs from
// the commit, so a stray file elsewhere in the repository does not mark it. Plain
// functions; thread-safe (each call runs its own git processes).
#pragma once

#include <string>
#include <string_view>

namespace manifold {

struct GitSource {
  std::string url;       // SourceUrl of the origin remote; "" when there is none or no URL
  std::string revision;  // HEAD's commit, with "-dirty" when the build's files have changes
};

// `dockerfile` counts for "-dirty" when it lies in the repository; "" or "-" (stdin): none.
GitSource DetectGitSource(const std::string& context_dir, const std::string& dockerfile = "");

// The org.opencontainers.image.source for a git remote: an http(s) URL stays (without its
// credentials); an ssh, git or scp-like remote ("git@github.com:org/app.git") becomes the
// https URL of the same repository ("https://github.com/org/app"), as the docker metadata
// action names the source; a local path or file:// URL gives "", as it names nothing a
// reader of the image can reach.
std::string SourceUrl(std::string_view remote);

}  // namespace manifold
