#pragma once
// A node: durable queues under a supervisor, served to other processes over a
// ZeroMQ endpoint. Each handshaked peer gets a session; a peer that goes silent
// or away loses its session, and its unacked deliveries are ready again at once.
// A peer may also ask for the node's metrics or supervision tree (infoRequest:
// `weir stats`, `weir tree`).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "weir/queue/queue.hpp"
#include "weir/runtime/file_system.hpp"
#include "weir/runtime/status.hpp"
#include "weir/transport/link_options.hpp"

namespace weir {

struct metrics_source;  // metrics.hpp

/// One queue a node serves.
struct node_queue_options {
  queue_options queue;  ///< data_dir empty: <node data dir>/<name>
  /// The name of its dead-letter queue, served by the same node (created with the
  /// same storage settings); empty: none, and then max_deliveries must be 0.
  std::string dead_letter_queue;
};

struct node_options {
  std::string listen;    ///< tcp://HOST:PORT (port 0: any free port)
  std::string data_dir;  ///< each queue's log lives in a directory under it
  std::vector<node_queue_options> queues;
  transport::link_options link;  ///< node id, heartbeats, frame size limit
  /// More than restarts_max queue restarts within restart_period: the node's
  /// supervisor gives up (and `weir node` exits 1).
  std::uint32_t restarts_max = 5;
  std::chrono::milliseconds restart_period{10'000};
};

/// Counters of a node's protocol handling; bad frames are counted by the link.
struct node_stats {
  std::uint64_t peers = 0;          ///< sessions open now
  std::uint64_t unknown_queue = 0;  ///< requests naming a queue this node does not serve
  std::uint64_t bad_requests = 0;   ///< acks for unknown consumers, refused credit, ...
  transport::link_stats link;
};

class node {
 public:
  virtual ~node() = default;  ///< stop() if not done yet

  /// Opens (recovering) every queue, then listens. Nothing is served if a queue fails.
  static result<std::unique_ptr<node>> start(caf::actor_system& system, file_system& fs,
                                             node_options options);

  /// The address peers connect to, with its actual port.
  virtual std::string address() const = 0;

  /// The queue actor serving `name` now (a restart replaces it); not_found if unknown.
  virtual result<caf::actor> queue(const std::string& name) const = 0;

  virtual node_stats stats() const = 0;

  /// The supervisor of the node's queues (answers tree_atom); invalid once stopped.
  virtual caf::actor supervisor() const = 0;

  /// Every queue served now, the supervisor and stats(): what render_prometheus
  /// (metrics.hpp) needs for this node.
  virtual metrics_source metrics() const = 0;

  /// Also serves `queue`, an actor the caller runs, as `name`; after the caller
  /// restarts it, call again with the new actor.
  virtual void serve(const std::string& name, caf::actor queue) = 0;

  /// Closes the endpoint, then stops the queues (each syncs its log) in reverse order.
  virtual status stop() = 0;
};

}  // namespace weir
