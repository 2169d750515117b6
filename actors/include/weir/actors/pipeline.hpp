#pragma once
// The pipeline graph: a source, a durable queue, and a stage running a chain of
// operators (map, filter, flat_map, key_by + reduce, tumbling window by count,
// sink), under a supervisor.
// The stage checkpoints its reduce state together with the input ids it has
// applied (Cap'n Proto, fsynced) before it acks them, so after any crash or
// SIGKILL state and input agree: every input is applied exactly once.
//
// Not built yet: several stages joined by queues, windows by time, nodes.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "weir/runtime/file_system.hpp"
#include "weir/runtime/status.hpp"

namespace weir {

/// What flows between operators.
struct element {
  std::string key;
  std::string value;
};

class pipeline_run;

class pipeline {
 public:
  explicit pipeline(std::string name);

  /// One element per line of a text file (value = the line). Restarting with the
  /// same file resumes: lines already in the queue are recognised and dropped.
  pipeline& source_lines(std::string name, std::string path);
  pipeline& map(std::string name, std::function<element(const element&)> fn);
  pipeline& filter(std::string name, std::function<bool(const element&)> keep);
  pipeline& flat_map(std::string name, std::function<std::vector<element>(const element&)> fn);
  /// Folds elements per key into a text accumulator ("" for a new key); emits (key, accumulator).
  pipeline& key_by_reduce(std::string name, std::function<std::string(const element&)> key,
                          std::function<std::string(const std::string&, const element&)> reduce);
  /// key_by_reduce that counts elements per element.key.
  pipeline& count_by_key(std::string name);
  /// Tumbling window by count: every `count` elements become aggregate(elements),
  /// emitted downstream. The open window is part of the stage's checkpoint.
  pipeline& tumbling_window_count(std::string name, std::size_t count,
                                  std::function<element(const std::vector<element>&)> aggregate);
  /// A terminal side effect, called at least once per element (again after a crash).
  pipeline& sink(std::string name, std::function<void(const element&)> fn);

  /// invalid_argument naming the problem: no source, no operator, two reduces, duplicate names.
  status validate() const;

  /// The graph in Graphviz DOT.
  std::string to_dot() const;

  /// Starts it with its data (queue log, stage checkpoint) under `data_dir`.
  result<std::unique_ptr<pipeline_run>> start(caf::actor_system& system, file_system& fs,
                                              const std::string& data_dir) const;

  struct op {
    enum class kind { map, filter, flat_map, reduce, sink, window } type;
    std::string name;
    std::function<element(const element&)> map_fn;
    std::function<bool(const element&)> filter_fn;
    std::function<std::vector<element>(const element&)> flat_map_fn;
    std::function<std::string(const element&)> key_fn;
    std::function<std::string(const std::string&, const element&)> reduce_fn;
    std::function<void(const element&)> sink_fn;
    std::size_t window_size = 0;
    std::function<element(const std::vector<element>&)> window_fn;
  };

 private:
  std::string name_;
  std::string source_name_;
  std::string source_path_;
  std::vector<op> ops_;
};

/// A started pipeline; destroying it stops it.
class pipeline_run {
 public:
  virtual ~pipeline_run() = default;

  /// Waits until the whole source is in the queue and the stage applied all of it.
  virtual status wait(std::chrono::milliseconds timeout) = 0;

  /// The reduce state as last checkpointed (key -> accumulator), sorted by key.
  virtual result<std::map<std::string, std::string>> state() const = 0;
};

}  // namespace weir
