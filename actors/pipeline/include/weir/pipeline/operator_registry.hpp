#pragma once
// Operators by type name, for pipelines declared in files (weir/config/topology.hpp):
// a factory appends its operator to a pipeline from the settings of its table.
// The built-ins are in docs/configuration.md; an embedding program adds its own.

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "weir/pipeline/pipeline.hpp"
#include "weir/runtime/status.hpp"

namespace weir {

/// An operator's settings from its TOML table, each value in TOML form
/// (strings unquoted), without the keys `type` and `name`.
using operator_settings = std::map<std::string, std::string>;

/// What an operator factory gets from its table in the file.
struct operator_context {
  std::string name;  ///< unique in the pipeline
  operator_settings settings;
  std::string base_dir;  ///< the topology file's directory, for relative paths
};

/// Appends the operator to `to`, or says what is wrong with a setting: a message
/// that starts with "KEY: " is reported at that key's line.
using operator_factory = std::function<status(pipeline& to, const operator_context& context)>;

/// Operators by type name. Starts with the built-ins: split_words, filter_regex,
/// key_regex, count_by_key, window_count, stdout, file (docs/configuration.md).
class operator_registry {
 public:
  operator_registry();

  /// Adds or replaces the operator `type`.
  void add(std::string type, operator_factory factory);

  /// The factory of `type`, or nullptr.
  const operator_factory* find(const std::string& type) const;

  std::vector<std::string> types() const;

 private:
  std::map<std::string, operator_factory> factories_;
};

/// The split_words operator: runs of letters and digits, lower-cased; key and value are the word.
std::vector<element> split_words(const element& line);

}  // namespace weir
