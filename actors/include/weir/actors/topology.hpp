#pragma once
// A pipeline declared in a TOML file (`weir run FILE.toml`): optional nodes,
// queues with their policies, a file source, and stages made of built-in
// operators or of operators the embedding program registers by name. The file
// format is in docs/configuration.md.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "weir/actors/pipeline.hpp"
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

/// A node of a multi-node topology.
struct topology_node {
  std::string name;
  std::string address;  ///< tcp://HOST:PORT
};

/// A loaded, checked topology.
struct topology {
  std::string name;
  pipeline graph{""};
  std::string data_dir;  ///< where queue logs and stage checkpoints live (absolute)
  std::string source_path;
  std::string source_queue;          ///< the source's queue as pipeline_run::actor_of names it
  std::vector<topology_node> nodes;  ///< empty: everything in one process
  std::string home;                  ///< the node that reads the source (with nodes)
  /// The stage whose counts `weir run` reports at the end ("" if none): the last
  /// stage with a count_by_key.
  std::string counting_stage;
  /// The dead-letter queues the run creates, by name.
  std::vector<std::string> dead_letter_queues;
  /// The whole configuration as TOML, defaults included.
  std::string effective_config;
};

/// Reads and checks FILE: unknown keys, wrong types, undeclared queues, cycles,
/// fan-out and unconnected stages are errors "FILE:LINE: key 'K': what (hint)".
/// Relative paths of sources are relative to FILE's directory. `data_dir`, when
/// not empty, replaces [pipeline] data_dir; either is made absolute against the
/// working directory (default "./weir-data").
result<topology> load_topology(const std::string& path,
                               const operator_registry& operators = operator_registry{},
                               const std::string& data_dir = {});

/// The split_words operator: runs of letters and digits, lower-cased; key and value are the word.
std::vector<element> split_words(const element& line);

/// The deployment of `this_node` in a multi-node topology.
result<deployment> deployment_of(const topology& t, const std::string& this_node);

}  // namespace weir
