#pragma once
// A pipeline declared in a TOML file (`weir run FILE.toml`): optional nodes,
// queues with their policies, a file source, and stages made of built-in
// operators or of operators the embedding program registers by name. The file
// format is in docs/configuration.md.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "weir/pipeline/operator_registry.hpp"
#include "weir/pipeline/pipeline.hpp"
#include "weir/runtime/status.hpp"

namespace weir {

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

/// The deployment of `this_node` in a multi-node topology.
result<deployment> deployment_of(const topology& t, const std::string& this_node);

}  // namespace weir
