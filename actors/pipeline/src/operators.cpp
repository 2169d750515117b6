// The built-in operators of topology files (docs/configuration.md).

#include <cctype>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <regex>
#include <set>

#include "weir/pipeline/operator_registry.hpp"

namespace weir {

namespace {

/// "KEY: why", which the loader reports at KEY's line.
status bad_setting(const std::string& key, const std::string& why) {
  return {errc::invalid_argument, key + ": " + why};
}

/// Refuses settings other than `known`.
status only(const operator_context& context, const std::set<std::string>& known) {
  for (const auto& [key, value] : context.settings) {
    if (known.count(key) == 0) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      return bad_setting(
          key, "unknown setting (known: " + (list.empty() ? std::string("none") : list) + ")");
    }
  }
  return {};
}

std::string setting(const operator_context& context, const std::string& key,
                    const std::string& fallback) {
  auto it = context.settings.find(key);
  return it == context.settings.end() ? fallback : it->second;
}

/// Which part of an element an operator looks at.
result<bool> reads_key(const operator_context& context, const std::string& key,
                       const std::string& fallback) {
  const auto field = setting(context, key, fallback);
  if (field != "key" && field != "value") {
    return bad_setting(key, "expected \"key\" or \"value\", not \"" + field + "\"");
  }
  return field == "key";
}

/// "k1=n1 k2=n2 ...", sorted by key: how many elements of each key a window held.
element count_window(const std::vector<element>& elements) {
  std::map<std::string, std::uint64_t> counts;
  for (const auto& e : elements) ++counts[e.key];
  std::string value;
  for (const auto& [key, count] : counts) {
    value += (value.empty() ? "" : " ") + key + "=" + std::to_string(count);
  }
  return {"window", std::move(value)};
}

std::string as_line(const element& e) {
  return e.key.empty() ? e.value + "\n" : e.key + "\t" + e.value + "\n";
}

result<std::uint64_t> positive(const operator_context& context, const std::string& key) {
  const auto text = setting(context, key, "");
  std::uint64_t value = 0;
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos ||
      text.size() > 12 || (value = std::stoull(text)) == 0) {
    return bad_setting(key, "expected a positive integer, not " + text);
  }
  return value;
}

/// The `pattern` setting, compiled (ECMAScript); required.
result<std::shared_ptr<const std::regex>> required_pattern(const operator_context& context,
                                                           const std::string& type) {
  auto it = context.settings.find("pattern");
  if (it == context.settings.end()) {
    return status{errc::invalid_argument, type + " needs a pattern = \"REGEX\""};
  }
  try {
    return std::make_shared<const std::regex>(it->second);
  } catch (const std::regex_error& e) {
    return bad_setting("pattern",
                       std::string("not a regular expression (ECMAScript): ") + e.what());
  }
}

/// Appends to a file opened at the first element; shared by the stage's incarnations.
class file_appender {
 public:
  explicit file_appender(std::string path) : path_(std::move(path)) {}

  void write(const element& e) {
    std::lock_guard lock(mutex_);
    if (!out_.is_open()) {
      out_.open(path_, std::ios::app | std::ios::binary);
      if (!out_) throw std::runtime_error("file sink cannot open " + path_);
    }
    out_ << as_line(e);
    out_.flush();
    if (!out_) throw std::runtime_error("file sink cannot write " + path_);
  }

 private:
  std::string path_;
  std::mutex mutex_;
  std::ofstream out_;
};

}  // namespace

/// Words are runs of letters and digits, lower-cased: key and value are the word.
std::vector<element> split_words(const element& line) {
  std::vector<element> words;
  std::string word;
  auto flush = [&] {
    if (!word.empty()) words.push_back({word, word});
    word.clear();
  };
  for (unsigned char c : line.value) {
    if (std::isalnum(c)) {
      word += static_cast<char>(std::tolower(c));
    } else {
      flush();
    }
  }
  flush();
  return words;
}

operator_registry::operator_registry() {
  add("split_words", [](pipeline& to, const operator_context& context) -> status {
    if (auto ok = only(context, {}); !ok) return ok;
    to.flat_map(context.name, split_words);
    return {};
  });
  add("filter_regex", [](pipeline& to, const operator_context& context) -> status {
    if (auto ok = only(context, {"pattern", "field", "invert"}); !ok) return ok;
    auto pattern = required_pattern(context, "filter_regex");
    if (!pattern) return pattern.error();
    auto on_key = reads_key(context, "field", "value");
    if (!on_key) return on_key.error();
    const auto invert = setting(context, "invert", "false");
    if (invert != "true" && invert != "false") {
      return bad_setting("invert", "expected true or false");
    }
    to.filter(context.name,
              [pattern = *pattern, key = *on_key, keep = invert == "false"](const element& e) {
                return std::regex_search(key ? e.key : e.value, *pattern) == keep;
              });
    return {};
  });
  add("key_regex", [](pipeline& to, const operator_context& context) -> status {
    if (auto ok = only(context, {"pattern", "group"}); !ok) return ok;
    auto compiled = required_pattern(context, "key_regex");
    if (!compiled) return compiled.error();
    auto pattern = *compiled;
    std::uint64_t group = 1;
    if (context.settings.count("group") != 0) {
      auto g = positive(context, "group");
      if (!g) return g.error();
      group = *g;
    }
    if (group > pattern->mark_count()) {
      return bad_setting(context.settings.count("group") != 0 ? "group" : "pattern",
                         "the pattern has " + std::to_string(pattern->mark_count()) +
                             " group(s), group " + std::to_string(group) + " was asked for");
    }
    to.map(context.name, [pattern, group](const element& e) {
      std::smatch match;
      if (!std::regex_search(e.value, match, *pattern)) return element{"", e.value};
      return element{match[static_cast<int>(group)].str(), e.value};
    });
    return {};
  });
  add("count_by_key", [](pipeline& to, const operator_context& context) -> status {
    if (auto ok = only(context, {"by"}); !ok) return ok;
    auto on_key = reads_key(context, "by", "key");
    if (!on_key) return on_key.error();
    if (*on_key) {
      to.count_by_key(context.name);
    } else {
      to.key_by_reduce(
          context.name, [](const element& e) { return e.value; },
          [](const std::string& count, const element&) {
            return std::to_string((count.empty() ? 0 : std::stoull(count)) + 1);
          });
    }
    return {};
  });
  add("window_count", [](pipeline& to, const operator_context& context) -> status {
    if (auto ok = only(context, {"size", "width_ms"}); !ok) return ok;
    const bool by_count = context.settings.count("size") != 0;
    if (by_count == (context.settings.count("width_ms") != 0)) {
      return {errc::invalid_argument,
              "window_count needs exactly one of size = ELEMENTS or width_ms = MILLISECONDS"};
    }
    auto amount = positive(context, by_count ? "size" : "width_ms");
    if (!amount) return amount.error();
    if (by_count) {
      to.tumbling_window_count(context.name, *amount, count_window);
    } else {
      to.tumbling_window_time(context.name, std::chrono::milliseconds(*amount), count_window);
    }
    return {};
  });
  add("stdout", [](pipeline& to, const operator_context& context) -> status {
    if (auto ok = only(context, {}); !ok) return ok;
    to.sink(context.name, [](const element& e) {
      static std::mutex stdout_mutex;  // stages run on several threads; lines stay whole
      std::lock_guard lock(stdout_mutex);
      std::cout << as_line(e) << std::flush;
    });
    return {};
  });
  add("file", [](pipeline& to, const operator_context& context) -> status {
    if (auto ok = only(context, {"path"}); !ok) return ok;
    auto path = setting(context, "path", "");
    if (path.empty()) return {errc::invalid_argument, "file needs a path = \"FILE\""};
    auto appender = std::make_shared<file_appender>(path);
    to.sink(context.name, [appender](const element& e) { appender->write(e); });
    return {};
  });
}

void operator_registry::add(std::string type, operator_factory factory) {
  factories_[std::move(type)] = std::move(factory);
}

const operator_factory* operator_registry::find(const std::string& type) const {
  auto it = factories_.find(type);
  return it == factories_.end() ? nullptr : &it->second;
}

std::vector<std::string> operator_registry::types() const {
  std::vector<std::string> names;
  for (const auto& [name, factory] : factories_) names.push_back(name);
  return names;
}

}  // namespace weir
