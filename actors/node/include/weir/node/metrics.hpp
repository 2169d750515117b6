#pragma once
// Metrics of a node or of an embedded pipeline run, in the Prometheus text
// exposition format 0.0.4, and its supervision tree as indented text. Every
// metric is listed in docs/metrics.md.
//
// Collecting asks each queue (stats_atom -> queue_stats) and the supervisor
// (tree_atom -> supervision_node) at once; rendering is a pure function of what
// came back. For a pipeline run:
//
//   metrics_source source;
//   for (auto& name : run->queue_names()) source.queues.emplace_back(name, run->actor_of(name));
//   source.supervisor = run->supervisor();
//   auto text = render_prometheus(system, source, std::chrono::seconds(2));

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "weir/node/node.hpp"
#include "weir/queue/protocol.hpp"
#include "weir/runtime/supervisor.hpp"

namespace weir {

/// What to collect from.
struct metrics_source {
  /// Queue name -> the queue actor serving it now; an invalid handle (a queue
  /// restarting) is reported as weir_queue_up 0.
  std::vector<std::pair<std::string, caf::actor>> queues = {};
  caf::actor supervisor = {};           ///< answers tree_atom; invalid: no actor metrics
  std::optional<node_stats> node = {};  ///< a node's own counters, if this is a node
};

/// What came back.
struct metrics_snapshot {
  /// In the order of metrics_source::queues; nullopt for a queue that did not answer in time.
  std::vector<std::pair<std::string, std::optional<queue_stats>>> queues = {};
  std::optional<supervision_node> tree = {};  ///< nullopt: no supervisor, or no answer in time
  std::optional<node_stats> node = {};
};

/// Asks every queue and the supervisor at once, without blocking the caller (so an
/// actor may call it); `done` runs once, on a CAF thread, when everything answered
/// or `timeout` passed.
void collect_metrics(caf::actor_system& system, metrics_source source,
                     std::chrono::milliseconds timeout, std::function<void(metrics_snapshot)> done);

/// The same, waiting for the answer: for threads outside CAF's scheduler (an HTTP
/// server's, main), never from inside an actor.
metrics_snapshot collect_metrics(caf::actor_system& system, const metrics_source& source,
                                 std::chrono::milliseconds timeout);

/// The snapshot in Prometheus text format 0.0.4: every family with # HELP and # TYPE.
std::string render_prometheus(const metrics_snapshot& snapshot);

/// collect_metrics (blocking) then render_prometheus: what a GET /metrics answers.
std::string render_prometheus(caf::actor_system& system, const metrics_source& source,
                              std::chrono::milliseconds timeout);

/// One line per actor, children indented by two spaces:
/// "NAME state=running restarts=0".
std::string render_tree(const supervision_node& tree);

}  // namespace weir
