#include "common/config_file.h"

#include <stdlib.h>
#include <toml++/toml.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace manifold {
namespace {

// The file `--config FILE`, `--config=FILE` or MANIFOLD_CONFIG names ("" if none).
std::string ConfigFilePath(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc) return argv[i + 1];
    if (std::strncmp(argv[i], "--config=", 9) == 0) return argv[i] + 9;
  }
  const char* env = std::getenv(kConfigEnv);
  return env != nullptr ? env : "";
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

// Line `number` (from 1) of `text`, "" past its end.
std::string_view Line(std::string_view text, size_t number) {
  for (; number > 1 && !text.empty(); --number) {
    size_t end = text.find('\n');
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
  }
  return text.substr(0, text.find('\n'));
}

// The key of a `key = value` line, without quotes ("" if the line is not one).
std::string_view KeyOf(std::string_view line) {
  size_t equals = line.find('=');
  if (equals == std::string_view::npos) return {};
  std::string_view key = Trim(line.substr(0, equals));
  if (key.size() >= 2 && (key.front() == '"' || key.front() == '\'') && key.back() == key.front()) {
    key = key.substr(1, key.size() - 2);
  }
  return key;
}

bool IsBareKey(std::string_view key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

// The options a file may set: those with an environment variable, by long name, except
// --config itself (a file naming another file would be a puzzle, not a setting).
std::vector<std::pair<std::string, const CLI::Option*>> SettableOptions(const CLI::App& app) {
  std::vector<std::pair<std::string, const CLI::Option*>> options;
  for (const CLI::Option* option : app.get_options()) {
    if (option->get_envname().empty()) continue;
    for (const std::string& name : option->get_lnames()) {
      if (name != "config") options.emplace_back(name, option);
    }
  }
  return options;
}

const CLI::Option* FindSettable(const CLI::App& app, std::string_view name) {
  for (const auto& [long_name, option] : SettableOptions(app)) {
    if (long_name == name) return option;
  }
  return nullptr;
}

// Edits (insert, delete, replace, swap two neighbours) that turn a into b.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min(
          {d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// The option whose name is closest to `name`, if it is close enough to be the one meant:
// about one edit in four characters (`api-lisen`, `slot`, `insecure-registries`).
std::string ClosestOption(const CLI::App& app, std::string_view name) {
  std::string best;
  size_t best_distance = std::max<size_t>(1, name.size() / 4) + 1;
  for (const auto& [long_name, option] : SettableOptions(app)) {
    size_t distance = EditDistance(name, long_name);
    if (distance < best_distance) {
      best = long_name;
      best_distance = distance;
    }
  }
  return best;
}

// The text the flag would take for a string, number or boolean; nullopt for other types.
std::optional<std::string> ScalarText(const toml::node& node) {
  if (const auto* text = node.as_string()) return text->get();
  if (const auto* number = node.as_integer()) return std::to_string(number->get());
  if (const auto* boolean = node.as_boolean()) return boolean->get() ? "true" : "false";
  if (const auto* number = node.as_floating_point()) {
    char buffer[32];  // the shortest text of any double fits
    return std::string(buffer, std::to_chars(buffer, buffer + sizeof(buffer), number->get()).ptr);
  }
  return std::nullopt;
}

// A value as the file would spell it, strings in double quotes (as the hints write them).
std::string TomlText(const toml::node& node) {
  std::ostringstream text;
  text << toml::toml_formatter(node, toml::format_flags::none);
  return text.str();
}

// The value an option's environment variable gets for `node`, or why the file is wrong.
Result<std::string> OptionValue(const CLI::Option& option, const std::string& name,
                                const toml::node& node) {
  if (const toml::array* list = node.as_array()) {
    const char delimiter = option.get_delimiter();
    if (delimiter == '\0') {
      std::string example = list->empty() ? "\"...\"" : TomlText(*list->get(0));
      return Status::InvalidArgument("`" + name + "` takes one value, not a list; write " + name +
                                     " = " + example);
    }
    std::string value;
    for (size_t i = 0; i < list->size(); ++i) {
      const toml::node& item = *list->get(i);
      std::optional<std::string> text = ScalarText(item);
      if (!text) {
        return Status::InvalidArgument("`" + name + "`'s list holds " + TomlText(item) +
                                       "; list strings, numbers or booleans: " + name +
                                       " = [\"a\", \"b\"]");
      }
      if (text->find(delimiter) != std::string::npos) {
        return Status::InvalidArgument("`" + name + "`: " + TomlText(item) + " holds '" +
                                       delimiter + "', which separates " + name +
                                       "'s values; give each value as its own list item");
      }
      if (i > 0) value += delimiter;
      value += *text;
    }
    return value;
  }
  if (node.is_table()) {
    return Status::InvalidArgument("`" + name +
                                   "` is a table; tables are not used: write `name = value` "
                                   "lines at the top of the file, named like the flags");
  }
  std::optional<std::string> text = ScalarText(node);
  if (!text) {
    return Status::InvalidArgument("`" + name + "` = " + TomlText(node) +
                                   " is a TOML date or time; quote it: " + name + " = \"" +
                                   TomlText(node) + "\"");
  }
  return *text;
}

// What to do about a line TOML cannot read, when it is `name = value` with the value
// written bare: a string without quotes (api-auth = on, agent-listen = tcp://...), or a
// boolean spelled as some other tools spell them (fast = yes). "" when it is not that.
std::string BareValueFix(const CLI::App& app, std::string_view line) {
  std::string_view key = KeyOf(line);
  if (!IsBareKey(key)) return "";
  std::string_view value = Trim(line.substr(line.find('=') + 1));
  if (size_t comment = value.find(" #"); comment != std::string_view::npos) {
    value = Trim(value.substr(0, comment));
  }
  if (value.empty() || std::string_view("\"'[{").find(value.front()) != std::string_view::npos ||
      value.find_first_of("\"\\") != std::string_view::npos) {
    return "";
  }
  std::string bare(value);
  const CLI::Option* option = FindSettable(app, key);
  if (option != nullptr && option->get_expected_max() == 0) {  // a flag: true or false
    std::string lower = bare;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    for (const char* yes : {"true", "yes", "on"}) {
      if (lower == yes) return "booleans are true or false: " + std::string(key) + " = true";
    }
    for (const char* no : {"false", "no", "off"}) {
      if (lower == no) return "booleans are true or false: " + std::string(key) + " = false";
    }
  }
  return "`" + bare + "` is not a TOML value; quote strings: " + std::string(key) + " = \"" + bare +
         "\"";
}

// The message for a file TOML cannot read: toml++'s, with what to do.
std::string ParseErrorMessage(const CLI::App& app, std::string_view text,
                              const toml::parse_error& error) {
  const size_t line = error.source().begin.line;
  const std::string where = ", line " + std::to_string(line) + ": ";
  const std::string description(error.description());
  // toml++ refuses a second definition ("cannot redefine existing string 'name'"): say
  // plainly that the name is set twice, and where it was set first.
  if (description.find("cannot redefine") != std::string::npos) {
    size_t close = description.rfind('\'');
    size_t open = close == std::string::npos ? close : description.rfind('\'', close - 1);
    if (open != std::string::npos) {
      std::string name = description.substr(open + 1, close - open - 1);
      std::string first;
      for (size_t earlier = 1; earlier < line; ++earlier) {
        std::string_view earlier_line = Trim(Line(text, earlier));
        if (earlier_line == "[" + name + "]" || KeyOf(earlier_line) == name) {
          first = " (first on line " + std::to_string(earlier) + ")";
          break;
        }
      }
      return where + "`" + name + "` is set twice" + first + "; keep one of them";
    }
  }
  std::string fix = BareValueFix(app, Line(text, line));
  if (fix.empty()) {
    fix =
        "write `name = value` lines: strings in double quotes, numbers and true/false bare, "
        "lists in [ ]";
  }
  return where + "not valid TOML (" + description + "); " + fix;
}

}  // namespace

Status LoadConfigFile(const CLI::App& app, int argc, char** argv, std::vector<std::string>* set) {
  const std::string path = ConfigFilePath(argc, argv);
  if (path.empty()) return Status::Ok();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::NotFound("cannot read the config file " + path + ": " + std::strerror(errno) +
                            " (--config or " + kConfigEnv + " names it)");
  }
  std::stringstream contents;
  contents << in.rdbuf();
  const std::string text = contents.str();
  const std::string file = "config file " + path;
  toml::table table;
  try {
    table = toml::parse(text, path);
  } catch (const toml::parse_error& error) {
    return Status::InvalidArgument(file + ParseErrorMessage(app, text, error));
  }

  // In the file's order, so that the first mistake reported is the first in the file.
  std::vector<std::pair<const toml::key*, const toml::node*>> settings;
  for (const auto& [key, node] : table) settings.emplace_back(&key, &node);
  std::sort(settings.begin(), settings.end(), [](const auto& a, const auto& b) {
    return a.first->source().begin < b.first->source().begin;
  });
  std::vector<std::pair<std::string, std::string>> values;  // environment variable, value
  for (const auto& [key, node] : settings) {
    const std::string name(key->str());
    const std::string where = file + ", line " + std::to_string(key->source().begin.line) + ": ";
    const CLI::Option* option = FindSettable(app, name);
    if (option == nullptr && node->is_table()) {
      return Status::InvalidArgument(where + "[" + name +
                                     "]: tables are not used; write `name = value` lines at the "
                                     "top of the file, named like the flags");
    }
    if (option == nullptr && app.get_option_no_throw("--" + name) != nullptr) {
      return Status::InvalidArgument(
          where + "`" + name + "` cannot be set in a config file; give it as a flag: --" + name);
    }
    if (option == nullptr) {
      std::string message = where + "`" + name + "` is not an option of this program";
      if (std::string closest = ClosestOption(app, name); !closest.empty()) {
        message += "; did you mean `" + closest + "`?";
      }
      return Status::InvalidArgument(message + " (--help lists the options)");
    }
    Result<std::string> value = OptionValue(*option, name, *node);
    if (!value.ok()) return Status::InvalidArgument(where + value.status().message());
    values.emplace_back(option->get_envname(), *value);
  }
  for (const auto& [env, value] : values) {
    if (std::getenv(env.c_str()) != nullptr) continue;  // the environment wins
    setenv(env.c_str(), value.c_str(), 1);
    set->push_back(env);
  }
  return Status::Ok();
}

std::optional<int> ParseWithConfigFile(CLI::App& app, int argc, char** argv) {
  app.add_option("--config",
                 "TOML file of `option = value` lines, named like the flags; flags and "
                 "environment variables override it")
      ->envname(kConfigEnv);
  std::vector<std::string> from_file;
  if (Status loaded = LoadConfigFile(app, argc, argv, &from_file); !loaded.ok()) {
    std::cerr << std::filesystem::path(argv[0]).filename().string() << ": " << loaded.message()
              << "\n";
    return 2;
  }
  std::optional<int> exit_code;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    exit_code = app.exit(e);
  }
  for (const std::string& name : from_file) unsetenv(name.c_str());
  return exit_code;
}

}  // namespace manifold
