#pragma once
// Links between nodes over ZeroMQ: an endpoint (ROUTER) that accepts many peers
// and a connection (DEALER) to one node. Each owns its socket on its own thread;
// the owner hears about peers and frames through a callback and sends frames
// from any thread. Handshake (hello), heartbeats and peer loss are handled here;
// what the frames mean is the owner's business.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <zmq.hpp>

#include "weir/runtime/status.hpp"
#include "weir/transport/frame.hpp"
#include "weir/transport/link_options.hpp"

namespace weir::transport {

/// A link session: a handshaked peer of an endpoint, or one up-period of a
/// connection. Never reused within a process, so a stale id cannot reach a new peer.
using peer_id = std::uint64_t;

struct link_event {
  enum class kind {
    peer_up,    ///< hello exchanged; `detail` is the peer's node id
    frame,      ///< a frame with messages other than hello and heartbeat
    peer_down,  ///< silent past the heartbeat timeout, re-handshaked, or misbehaved; `detail` says which
  };
  kind type = kind::frame;
  peer_id peer = 0;
  std::string detail;
  inbound_frame_ptr frame;
};

/// Called on the link's socket thread, in order per peer; must not block.
using link_handler = std::function<void(link_event)>;

/// Accepts peers on one address (ZeroMQ ROUTER).
class endpoint {
 public:
  virtual ~endpoint() = default;  ///< stops the thread and closes the socket

  /// Binds `address` ("tcp://127.0.0.1:0" picks a free port) and starts the thread.
  static result<std::unique_ptr<endpoint>> listen(const std::string& address,
                                                  link_options options, link_handler handler);

  /// The bound address with its actual port.
  virtual std::string address() const = 0;

  /// Queues a frame for a peer; thread-safe. A frame for a peer that is down is dropped.
  virtual void send(peer_id peer, zmq::message_t frame) = 0;

  virtual link_stats stats() const = 0;
};

/// A connection to one node (ZeroMQ DEALER). ZeroMQ reconnects the socket; the
/// connection repeats hello until the node answers, so every reconnect is a new
/// session (peer_down, then peer_up with a new peer id).
class connection {
 public:
  virtual ~connection() = default;

  /// Starts connecting to `address`; not up until peer_up is reported.
  static result<std::unique_ptr<connection>> connect(const std::string& address,
                                                     link_options options, link_handler handler);

  /// Queues a frame for the node; thread-safe. Dropped while the session is down.
  virtual void send(zmq::message_t frame) = 0;

  virtual link_stats stats() const = 0;
};

}  // namespace weir::transport
