#include "common/dockerignore.h"

#include <fstream>
#include <sstream>

namespace manifold {
namespace {

std::string Trim(std::string_view text) {
  size_t begin = text.find_first_not_of(" \t\r");
  if (begin == std::string_view::npos) return "";
  size_t end = text.find_last_not_of(" \t\r");
  return std::string(text.substr(begin, end - begin + 1));
}

// filepath.Clean for '/'-separated relative paths: no empty or "." components, ".."
// folded, no leading or trailing '/'.
std::string CleanPath(std::string_view path) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in{std::string(path)};
  while (std::getline(in, part, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == ".." && !parts.empty() && parts.back() != "..") {
      parts.pop_back();
    } else {
      parts.push_back(part);
    }
  }
  std::string cleaned;
  for (const std::string& p : parts) cleaned += (cleaned.empty() ? "" : "/") + p;
  return cleaned;
}

// Translates one pattern into an ECMAScript regex over whole paths.
Result<std::regex> Compile(const std::string& pattern) {
  std::string re = "^";
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '*') {
      if (i + 1 < pattern.size() && pattern[i + 1] == '*') {
        ++i;
        if (i + 1 < pattern.size() && pattern[i + 1] == '/') {
          ++i;
          re += "(.*/)?";  // "**/" matches zero or more directories
        } else {
          re += ".*";
        }
      } else {
        re += "[^/]*";
      }
    } else if (c == '?') {
      re += "[^/]";
    } else if (c == '\\') {
      if (i + 1 == pattern.size()) return Status::InvalidArgument("it ends with '\\'");
      re += '\\';
      re += pattern[++i];
    } else if (c == '[') {
      size_t close = pattern.find(']', i + 1);
      if (close == std::string::npos) return Status::InvalidArgument("'[' is never closed");
      std::string cls = pattern.substr(i + 1, close - i - 1);
      if (!cls.empty() && cls[0] == '!') cls[0] = '^';
      re += "[" + cls + "]";
      i = close;
    } else if (std::string_view(".+()|^${}").find(c) != std::string_view::npos) {
      re += '\\';
      re += c;
    } else {
      re += c;
    }
  }
  re += "$";
  try {
    return std::regex(re, std::regex::ECMAScript | std::regex::optimize);
  } catch (const std::regex_error& e) {
    return Status::InvalidArgument(e.what());
  }
}

// Whether `path` or one of the directories above it matches.
bool MatchesPathOrParent(const std::regex& regex, const std::string& path) {
  size_t end = path.size();
  while (end > 0) {
    if (std::regex_match(path.begin(), path.begin() + static_cast<std::ptrdiff_t>(end), regex)) {
      return true;
    }
    size_t slash = path.rfind('/', end - 1);
    if (slash == std::string::npos) return false;
    end = slash;
  }
  return false;
}

}  // namespace

Result<DockerIgnore> DockerIgnore::Parse(std::string_view text) {
  DockerIgnore ignore;
  std::istringstream in{std::string(text)};
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    std::string pattern = Trim(line);
    if (pattern.empty() || pattern[0] == '#') continue;
    bool exclusion = pattern[0] == '!';
    if (exclusion) pattern = Trim(pattern.substr(1));
    pattern = CleanPath(pattern);
    if (pattern.empty()) continue;
    Result<std::regex> regex = Compile(pattern);
    if (!regex.ok()) {
      return Status::InvalidArgument(".dockerignore line " + std::to_string(number) + " (\"" +
                                     line + "\"): " + regex.status().message());
    }
    ignore.patterns_.push_back({pattern, std::move(*regex), exclusion});
  }
  return ignore;
}

Result<DockerIgnore> DockerIgnore::Load(const std::string& context_dir) {
  std::ifstream in(context_dir + "/.dockerignore", std::ios::binary);
  if (!in) return DockerIgnore();
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str());
}

bool DockerIgnore::Excluded(std::string_view path) const {
  std::string cleaned = CleanPath(path);
  bool excluded = false;
  for (const Pattern& pattern : patterns_) {
    if (pattern.exclusion == !excluded) continue;  // it cannot change the verdict
    if (MatchesPathOrParent(pattern.regex, cleaned)) excluded = !pattern.exclusion;
  }
  return excluded;
}

bool DockerIgnore::MayReincludeUnder(std::string_view directory) const {
  std::string prefix = CleanPath(directory) + "/";
  for (const Pattern& pattern : patterns_) {
    if (!pattern.exclusion) continue;
    // The pattern's literal start (up to its first wildcard) decides whether it can reach
    // beneath the directory.
    size_t wild = pattern.text.find_first_of("*?[\\");
    std::string literal = pattern.text.substr(0, wild);
    if (literal.size() >= prefix.size() ? literal.compare(0, prefix.size(), prefix) == 0
                                        : prefix.compare(0, literal.size(), literal) == 0) {
      return true;
    }
  }
  return false;
}

}  // namespace manifold
