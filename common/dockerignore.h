// DockerIgnore: which paths of a build context to leave out, from a .dockerignore file
// with Docker's rules.
//
// One pattern per line; blank lines and lines starting with '#' are ignored; a leading
// '!' re-includes what an earlier pattern excluded; patterns are relative to the context
// root (a leading '/' is dropped) and cleaned like paths. '*' matches any run of
// characters but '/', '?' one character but '/', '[...]' a class, '**' any number of
// directories (including none), and '\' escapes. A pattern that matches a directory
// also matches everything under it. The last pattern that matches a path decides.
// Immutable after Parse; thread-safe.
#pragma once

#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace manifold {

class DockerIgnore {
 public:
  DockerIgnore() = default;

  // InvalidArgument (naming the line) for a pattern that cannot be compiled.
  static Result<DockerIgnore> Parse(std::string_view text);
  // Reads CONTEXT_DIR/.dockerignore; no file means nothing is excluded.
  static Result<DockerIgnore> Load(const std::string& context_dir);

  // Whether `path` (relative to the context root, '/'-separated) is left out.
  bool Excluded(std::string_view path) const;
  // Whether the walk must still enter an excluded directory because a '!' pattern may
  // re-include something beneath it.
  bool MayReincludeUnder(std::string_view directory) const;
  bool empty() const { return patterns_.empty(); }

 private:
  struct Pattern {
    std::string text;  // cleaned
    std::regex regex;
    bool exclusion = false;  // a '!' pattern
  };
  std::vector<Pattern> patterns_;
};

}  // namespace manifold
