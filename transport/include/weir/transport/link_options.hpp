#pragma once
// The settings and counters of a link (link.hpp), apart from the link itself:
// whoever configures or reports on links (a node, a pipeline's deployment, a
// remote queue) names these without including ZeroMQ or Cap'n Proto.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace weir::transport {

/// Limits applied to every received frame.
struct frame_limits {
  std::size_t max_frame_bytes = 64u << 20;  ///< larger frames are refused with frameTooLarge
};

/// The largest message body a client sends: one frame at the default limit,
/// less room for the rest of the frame (queue name, key, headers, envelope).
inline constexpr std::size_t message_body_bytes_max =
    frame_limits{}.max_frame_bytes - (std::size_t{64} << 10);

struct link_options {
  std::string node_id;  ///< sent in hello
  std::chrono::milliseconds heartbeat_interval{500};
  std::chrono::milliseconds heartbeat_timeout{3000};  ///< silence after which a peer is down
  frame_limits limits;
  /// Frames waiting for the socket thread; send() beyond this drops (frames_dropped).
  std::size_t send_queue_frames_max = 100000;
  /// Endpoint: sessions at once; a hello beyond them is refused (tooManySessions).
  std::size_t sessions_max = 1024;
};

/// Counters of a link; bad input increments one of the error counters and is logged.
struct link_stats {
  std::uint64_t frames_in = 0;
  std::uint64_t frames_out = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t malformed_frames = 0;      ///< not Cap'n Proto, truncated, unknown message kinds
  std::uint64_t version_mismatches = 0;    ///< another protocol version
  std::uint64_t oversized_frames = 0;      ///< past frame_limits::max_frame_bytes
  std::uint64_t handshake_violations = 0;  ///< frames before hello
  std::uint64_t sessions_refused = 0;      ///< hellos refused: sessions_max reached
  std::uint64_t peers_up = 0;
  std::uint64_t peers_lost = 0;  ///< every peer_down; peers_up - peers_lost are up now
  /// Not sent (peer down or unknown, send queue full, ZeroMQ high-water mark), or
  /// received for a session that had already ended.
  std::uint64_t frames_dropped = 0;
};

}  // namespace weir::transport
