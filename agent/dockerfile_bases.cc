#include "agent/dockerfile_bases.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>

#include "common/reference.h"

namespace manifold {

namespace {

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Replaces $NAME, ${NAME} and ${NAME:-default} from `values`; false when a variable has
// no value.
bool Expand(const std::string& text, const std::map<std::string, std::string>& values,
            std::string* out) {
  out->clear();
  for (size_t i = 0; i < text.size();) {
    if (text[i] != '$') {
      out->push_back(text[i++]);
      continue;
    }
    bool braced = i + 1 < text.size() && text[i + 1] == '{';
    size_t start = i + (braced ? 2 : 1);
    size_t end = braced ? text.find('}', start) : start;
    if (!braced) {
      while (end < text.size() &&
             (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '_')) {
        ++end;
      }
    }
    if (end == std::string::npos || end == start) return false;
    std::string name = text.substr(start, end - start);
    std::string fallback;
    bool has_fallback = false;
    if (size_t dash = name.find(":-"); braced && dash != std::string::npos) {
      fallback = name.substr(dash + 2);
      name = name.substr(0, dash);
      has_fallback = true;
    }
    auto value = values.find(name);
    if (value != values.end() && !value->second.empty()) {
      out->append(value->second);
    } else if (has_fallback) {
      out->append(fallback);
    } else {
      return false;
    }
    i = end + (braced ? 1 : 0);
  }
  return true;
}

// The Dockerfile's logical lines: continuations ("\" at the end) joined, comments dropped.
std::vector<std::string> LogicalLines(std::string_view dockerfile) {
  std::vector<std::string> lines;
  std::string current;
  std::istringstream in{std::string(dockerfile)};
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t first = line.find_first_not_of(" \t");
    if (first != std::string::npos && line[first] == '#') continue;
    if (!line.empty() && line.back() == '\\') {
      current += line.substr(0, line.size() - 1) + " ";
      continue;
    }
    lines.push_back(current + line);
    current.clear();
  }
  if (!current.empty()) lines.push_back(current);
  return lines;
}

}  // namespace

std::vector<std::string> DockerfileBases(std::string_view dockerfile,
                                         const std::map<std::string, std::string>& build_args) {
  std::map<std::string, std::string> args;  // ARGs before the first FROM, then build args
  std::set<std::string> stages;
  std::vector<std::string> bases;
  bool seen_from = false;
  auto add = [&](const std::string& text) {
    std::string expanded;
    if (!Expand(text, args, &expanded) || stages.count(Lower(expanded)) != 0 ||
        Lower(expanded) == "scratch") {
      return;
    }
    Result<Reference> reference = ParseReference(expanded);
    if (!reference.ok()) return;
    std::string name = reference->ToString();
    if (std::find(bases.begin(), bases.end(), name) == bases.end()) bases.push_back(name);
  };
  for (const std::string& line : LogicalLines(dockerfile)) {
    std::istringstream words(line);
    std::string instruction;
    words >> instruction;
    instruction = Lower(instruction);
    std::vector<std::string> rest;
    for (std::string word; words >> word;) rest.push_back(word);
    if (instruction == "arg" && !seen_from && !rest.empty()) {
      size_t eq = rest[0].find('=');
      std::string name = rest[0].substr(0, eq);
      if (!args.count(name)) args[name] = eq == std::string::npos ? "" : rest[0].substr(eq + 1);
    } else if (instruction == "from") {
      if (!seen_from) {
        for (const auto& [key, value] : build_args) args[key] = value;
        seen_from = true;
      }
      auto image = std::find_if(rest.begin(), rest.end(),
                                [](const std::string& word) { return word.rfind("--", 0) != 0; });
      if (image == rest.end()) continue;
      add(*image);
      if (std::distance(image, rest.end()) >= 3 && Lower(*(image + 1)) == "as") {
        stages.insert(Lower(*(image + 2)));
      }
    } else if (instruction == "copy") {
      for (const std::string& word : rest) {
        if (word.rfind("--from=", 0) != 0) continue;
        std::string from = word.substr(7);
        bool stage_index = !from.empty() && std::all_of(from.begin(), from.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c));
        });
        if (!stage_index) add(from);
      }
    }
  }
  return bases;
}

}  // namespace manifold
